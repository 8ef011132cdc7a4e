//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// usernsManifest's container prints its uid_map and the owners it sees
// on its emptyDir each on one line ($(...) unquoted joins the lines, so a
// map of several ranges shows as more than three numbers).
const usernsManifest = `apiVersion: v1
kind: Pod
metadata:
  name: userns
  namespace: default
spec:
  terminationGracePeriodSeconds: 2
  hostUsers: false
  volumes:
  - name: data
    emptyDir: {}
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; echo crib-e2e-userns > /data/file && echo owners: $(stat -c %u:%g /data /data/file); echo uid_map: $(cat /proc/self/uid_map); sleep 3600 & wait"]
    volumeMounts:
    - {name: data, mountPath: /data}
`

// TestHostUsersFalse: a static pod with hostUsers: false runs under
// kubelet in its own user namespace. Its one ID range is the one kubelet
// allocated (not from 0), its process runs on the host as that range's
// first ID, the emptyDir kubelet idmaps shows root's files as the pod
// root's and what the pod's root writes there is the host root's;
// removing the manifest leaves nothing on the node.
//
// kubelet 1.37 has UserNamespacesSupport on by default (on
// since 1.33). With no "kubelet" user on the node (or no getsubids) it
// picks a free range of 65536 IDs anywhere in [65536, 2^32), so the test
// needs no /etc/subuid setup. It needs cribd to advertise user
// namespaces in Status (the harness makes cribd's dirs searchable by
// others), or kubelet refuses the pod.
func TestHostUsersFalse(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	mountsBefore := mountsUnder(e.Dir)

	var status struct {
		RuntimeHandlers []struct {
			Name     string `json:"name"`
			Features struct {
				UserNamespaces bool `json:"user_namespaces"`
			} `json:"features"`
		} `json:"runtimeHandlers"`
	}
	c.CrictlJSON(&status, "info", "-o", "json")
	if len(status.RuntimeHandlers) == 0 || !status.RuntimeHandlers[0].Features.UserNamespaces {
		t.Fatalf("cribd's Status does not advertise user namespaces (kubelet would refuse hostUsers: false): %+v\ncribd log:\n%s",
			status.RuntimeHandlers, tail(c.Log(), 20))
	}

	k.WriteManifest("userns", usernsManifest)
	pod := waitRunning(t, k, "userns", 1)
	podID := sandboxID(t, c, k, "userns")
	ctrs := containers(t, c, podID)
	if len(ctrs) != 1 {
		t.Fatalf("crictl ps -a --pod %s: %+v, want one container", podID, ctrs)
	}
	cid := ctrs[0].ID

	// The container's report: its ID map, and the owners it sees on the
	// emptyDir.
	var uidMap, owners string
	eventually(t, 20*time.Second, "the container's log shows its uid_map", func() (bool, string) {
		out, errOut, err := c.CrictlRaw("logs", cid)
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, errOut)
		}
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "uid_map: "); ok {
				uidMap = strings.Join(strings.Fields(v), " ")
			}
			if v, ok := strings.CutPrefix(line, "owners: "); ok {
				owners = strings.TrimSpace(v)
			}
		}
		return uidMap != "", fmt.Sprintf("stdout %q stderr %q", out, errOut)
	})
	t.Logf("the container's uid_map: %s", uidMap)
	f := strings.Fields(uidMap)
	if len(f) != 3 || f[0] != "0" || f[2] != "65536" {
		t.Fatalf("the container's uid_map is %q, want one range \"0 <host ID> 65536\"", uidMap)
	}
	hostID, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil || hostID == 0 {
		t.Fatalf("the container's uid_map %q maps root to host ID %q, want a non-zero host ID", uidMap, f[1])
	}
	// kubelet's record of the range it allocated for the pod.
	var alloc struct {
		UIDMappings []struct {
			HostID uint64 `json:"hostId"`
		} `json:"uidMappings"`
	}
	allocPath := filepath.Join(k.Dir, "root", "pods", pod.Metadata.UID, "userns")
	if b, err := os.ReadFile(allocPath); err != nil {
		t.Errorf("kubelet's user namespace allocation: %v", err)
	} else if err := json.Unmarshal(b, &alloc); err != nil || len(alloc.UIDMappings) != 1 || alloc.UIDMappings[0].HostID != hostID {
		t.Errorf("kubelet allocated %s (%v), the container's uid_map is %q", b, err, uidMap)
	}

	// On the host the container's process is the range's first ID.
	pid := containerPID(t, c, cid)
	if uid := harness.ProcStatus(t, pid, "Uid:")[0]; uid != f[1] {
		t.Errorf("the container's process %d runs as host UID %s, want %s (its root's host ID)", pid, uid, f[1])
	}

	// The emptyDir is idmapped: inside, the host's root owns it; on the
	// host, the pod's root's file is root's.
	if owners != "0:0 0:0" {
		t.Errorf("inside the pod, /data and /data/file are owned by %q, want \"0:0 0:0\" (an idmapped emptyDir)", owners)
	}
	file := filepath.Join(k.Dir, "root", "pods", pod.Metadata.UID, "volumes", "kubernetes.io~empty-dir", "data", "file")
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		t.Errorf("the file the pod wrote in its emptyDir: %v", err)
	} else if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s is owned by %d:%d on the host, want 0:0 (written by the pod's root through an idmapped mount)", file, st.Uid, st.Gid)
	}
	if b, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(b)) != "crib-e2e-userns" {
		t.Errorf("%s holds %q, want crib-e2e-userns", file, b)
	}

	removeStaticPod(t, e, "userns")
	eventually(t, 60*time.Second, "nothing left on the node", func() (bool, string) {
		left := leftovers(e, podID, pod.Metadata.UID, mountsBefore)
		return len(left) == 0, strings.Join(left, "; ")
	})
}
