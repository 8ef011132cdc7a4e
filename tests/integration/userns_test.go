//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// usernsHostID is where the test pods' ID range starts on the host.
const usernsHostID = 200000

// usernsOptions is a POD user namespace of 65536 IDs, as kubelet gives one.
func usernsOptions() map[string]any {
	m := []map[string]any{{"container_id": 0, "host_id": usernsHostID, "length": 65536}}
	return map[string]any{"mode": 0, "uids": m, "gids": m} // mode 0: POD
}

// hostUID is the host UID a process runs as (the real one, from status).
func hostUID(t *testing.T, pid int) string {
	t.Helper()
	return procStatus(t, pid, "Uid:")[0]
}

// ownerNS is the user namespace that owns the namespace file at path.
func ownerNS(t *testing.T, path string) nsID {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		t.Fatalf("NS_GET_USERNS %s: %v", path, err)
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		t.Fatal(err)
	}
	return nsID{dev: st.Dev, ino: st.Ino}
}

// TestPodUserNamespace: a pod with its own user namespace (kubelet's
// hostUsers: false). Its processes run as unprivileged host IDs, its
// namespaces belong to its user namespace, its root owns the image's files
// and can write its root filesystem, a volume kubelet idmaps shows the
// host's root as the pod's, exec and a cribd restart work, and removing the
// pod leaves nothing behind.
func TestPodUserNamespace(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	var status struct {
		RuntimeHandlers []struct {
			Features struct {
				UserNamespaces bool `json:"user_namespaces"` // crictl marshals the handlers with encoding/json
			} `json:"features"`
		} `json:"runtimeHandlers"`
	}
	h.CrictlJSON(&status, "info", "-o", "json")
	if len(status.RuntimeHandlers) == 0 || !status.RuntimeHandlers[0].Features.UserNamespaces {
		t.Fatalf("Status does not advertise user namespaces: %+v\ncribd log:\n%s", status, tail(h.Log(), 20))
	}

	pod := podConfig("userns")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	nsOpts := map[string]any{"userns_options": usernsOptions()}
	pod["linux"] = map[string]any{
		"security_context": map[string]any{"namespace_options": nsOpts},
		// Written by pause's init as root of the pod's user namespace,
		// which owns the network namespace.
		"sysctls": map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"},
	}
	podID := h.RunPod(pod)

	// The pod's namespaces belong to its user namespace; pause runs as
	// the pod's 65535.
	userPin := h.pinPath(podID, "user")
	pause := h.PausePID(podID)
	if got, want := procNS(t, pause, "user"), nsOf(t, userPin); got != want {
		t.Errorf("pause is in user namespace %v, want the pod's pin %v", got, want)
	}
	for _, kind := range []string{"net", "ipc", "uts"} {
		if got, want := ownerNS(t, h.pinPath(podID, kind)), nsOf(t, userPin); got != want {
			t.Errorf("the pod's %s namespace is owned by user namespace %v, want the pod's %v", kind, got, want)
		}
	}
	if got, want := hostUID(t, pause), fmt.Sprint(usernsHostID+65535); got != want {
		t.Errorf("pause runs as host UID %s, want %s", got, want)
	}
	var podStatus struct {
		Status struct {
			Linux struct {
				Namespaces struct {
					Options struct {
						UsernsOptions struct {
							Mode string `json:"mode"`
							Uids []struct {
								HostID int `json:"hostId"`
							} `json:"uids"`
						} `json:"usernsOptions"`
					} `json:"options"`
				} `json:"namespaces"`
			} `json:"linux"`
		} `json:"status"`
	}
	h.CrictlJSON(&podStatus, "inspectp", "-o", "json", podID)
	if u := podStatus.Status.Linux.Namespaces.Options.UsernsOptions; u.Mode != "POD" || len(u.Uids) != 1 || u.Uids[0].HostID != usernsHostID {
		t.Errorf("PodSandboxStatus userns options: %+v, want POD from %d", u, usernsHostID)
	}

	// A volume kubelet idmaps, and one it does not: the host's root owns
	// a file on each.
	mapped, plain := filepath.Join(h.Dir, "mapped"), filepath.Join(h.Dir, "plain")
	for _, d := range []string{mapped, plain} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "owned"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idmap := []map[string]any{{"container_id": 0, "host_id": usernsHostID, "length": 65536}}
	ctr := shellContainer("userns", strings.Join([]string{
		"cat /proc/self/uid_map",
		"echo port-start $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)",
		"echo owners $(stat -c %u:%g / /bin/busybox /etc/hosts /mapped/owned /plain/owned /dev/shm)",
		"touch /dev/shm/new && echo shm-writable $(stat -c %u:%g /dev/shm/new)",
		"touch /written && echo rootfs-writable",
		"touch /mapped/new && echo mapped-writable",
		"exec sleep 600",
	}, "; "))
	ctr["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": nsOpts}}
	ctr["mounts"] = []map[string]any{
		{"container_path": "/mapped", "host_path": mapped, "uidMappings": idmap, "gidMappings": idmap},
		{"container_path": "/plain", "host_path": plain},
	}
	id := h.CreateContainer(podID, ctr, pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	var out string
	eventually(t, 10*time.Second, "the container's report", func() (bool, string) {
		out = h.Crictl("logs", id)
		return strings.Contains(out, "mapped-writable") || strings.Contains(out, "sleep"), out
	})
	for _, want := range []string{
		fmt.Sprintf("0 %d 65536", usernsHostID),
		"port-start 80",
		// The image's files, crib's /etc/hosts and the idmapped volume are
		// root's; the plain volume's file is the overflow ID; the pod's
		// /dev/shm (a tmpfs mounted for its root, not idmapped) is root's.
		"owners 0:0 0:0 0:0 0:0 65534:65534 0:0",
		"shm-writable 0:0",
		"rootfs-writable",
		"mapped-writable",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	pid := h.InspectContainer(id).Info.Pid
	// The rootfs bind is reachable by the pod's root only (and the host's).
	bindDir := filepath.Join(h.RunDir, "storage", "userns-rootfs", id)
	var st unix.Stat_t
	if err := unix.Stat(bindDir, &st); err != nil || st.Mode&0o777 != 0o700 || st.Uid != usernsHostID || st.Gid != usernsHostID {
		t.Errorf("%s: mode %#o owner %d:%d (%v), want 0700 and the pod root's %d", bindDir, st.Mode&0o777, st.Uid, st.Gid, err, usernsHostID)
	}
	for uid, wantOK := range map[int]bool{usernsHostID: true, usernsHostID + 1: false} {
		out, err := exec.Command("setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups",
			"ls", filepath.Join(bindDir, "rootfs", "bin", "busybox")).CombinedOutput()
		if (err == nil) != wantOK {
			t.Errorf("host UID %d reaching the rootfs bind: %v %s, want reachable %v", uid, err, out, wantOK)
		}
	}
	if got := hostUID(t, pid); got != fmt.Sprint(usernsHostID) {
		t.Errorf("the container's root runs as host UID %s, want %d", got, usernsHostID)
	}
	// Written through the idmapped mount by the pod's root: the host's root.
	if err := unix.Stat(filepath.Join(mapped, "new"), &st); err != nil || st.Uid != 0 {
		t.Errorf("file the pod's root made on the idmapped volume: uid %d (%v), want 0", st.Uid, err)
	}

	if got := strings.TrimSpace(h.Crictl("exec", "-s", id, "id", "-u")); got != "0" {
		t.Errorf("exec: id -u = %q, want 0", got)
	}
	h.Kill()
	h.Start()
	if st := h.InspectContainer(id); st.Status.State != "CONTAINER_RUNNING" || st.Info.Pid != pid {
		t.Errorf("after a cribd restart: %s pid %d, want RUNNING pid %d", st.Status.State, st.Info.Pid, pid)
	}
	if got := strings.TrimSpace(h.Crictl("exec", "-s", id, "cat", "/proc/self/uid_map")); strings.Join(strings.Fields(got), " ") != fmt.Sprintf("0 %d 65536", usernsHostID) {
		t.Errorf("exec after restart: uid_map %q", got)
	}

	h.Crictl("stop", "-t", "0", id)
	h.Crictl("rm", id)
	h.Crictl("stopp", podID)
	if _, err := os.Stat(userPin); !os.IsNotExist(err) {
		t.Errorf("user namespace pin %s after stopp: %v", userPin, err)
	}
	h.Crictl("rmp", podID)
	if left, _ := filepath.Glob(filepath.Join(h.RunDir, "storage", "userns-rootfs", "*")); len(left) != 0 {
		t.Errorf("root filesystem binds left: %v", left)
	}
}

// TestPodUserNamespaceBadInput: a container must run in its pod's user
// namespace, and idmapped mounts need one; both are refused before
// anything is made.
func TestPodUserNamespaceBadInput(t *testing.T) {
	h, hostPodID, _ := containerPod(t)
	pod := podConfig("userns-bad")
	pod["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"userns_options": usernsOptions()}}}
	podID := h.RunPod(pod)

	podCfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "x", Namespace: "y", Uid: "z"}}
	idmap := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: usernsHostID, Length: 65536}}
	base := badContainerConfig
	tests := []struct {
		name string
		pod  string
		cfg  *runtimeapi.ContainerConfig
		want string
	}{
		{"host user namespace in a user namespace pod", podID, base(func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}},
			}}
		}), "mode is NODE but pod " + podID + " uses POD"},
		{"other mappings", podID, base(func(c *runtimeapi.ContainerConfig) {
			other := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 2 * usernsHostID, Length: 65536}}
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: other, Gids: other}},
			}}
		}), "differ from the mappings of pod " + podID},
		{"idmapped mount in a host pod", hostPodID, base(func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/m", HostPath: h.Dir, UidMappings: idmap, GidMappings: idmap}}
		}), "mounts[0]: uid_mappings and gid_mappings need a pod user namespace"},
	}
	c := h.client()
	for _, tc := range tests {
		_, err := c.CreateContainer(ctx30(t), &runtimeapi.CreateContainerRequest{PodSandboxId: tc.pod, Config: tc.cfg, SandboxConfig: podCfg})
		wantCode(t, tc.name, err, codes.InvalidArgument, tc.want)
	}
	if out := h.Crictl("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("refused creates left containers: %q", out)
	}
	h.Crictl("rmp", "-f", podID)
	h.Crictl("rmp", "-f", hostPodID)
}
