//go:build integration

package integration

import (
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestRunPodSandbox: crictl runp gives a Ready pod with an IP from the
// bridge's subnet; crictl pods and inspectp show it with its metadata,
// labels and annotations exactly as given.
func TestRunPodSandbox(t *testing.T) {
	h := start(t, Options{})

	cfg := podConfig("ready")
	cfg["metadata"].(map[string]any)["attempt"] = 2
	labels := map[string]string{"app": "crib-it", "tier": "one"}
	annotations := map[string]string{"crib.test/note": "hello world", "empty": ""}
	cfg["labels"] = labels
	cfg["annotations"] = annotations
	cfg["hostname"] = "ready-host"
	id := h.RunPod(cfg)
	meta := cfg["metadata"].(map[string]any)

	st := h.Inspect(id)
	if st.Status.ID != id {
		t.Errorf("inspectp: id %q, want %q", st.Status.ID, id)
	}
	if st.Status.State != "SANDBOX_READY" {
		t.Errorf("inspectp: state %q, want SANDBOX_READY", st.Status.State)
	}
	_, subnet, _ := net.ParseCIDR(podSubnet)
	if ip := net.ParseIP(st.Status.Network.IP); ip == nil || !subnet.Contains(ip) {
		t.Errorf("inspectp: network.ip %q, want an address in %s", st.Status.Network.IP, podSubnet)
	}
	m := st.Status.Metadata
	if m.Name != meta["name"] || m.UID != meta["uid"] || m.Namespace != meta["namespace"] || m.Attempt != 2 {
		t.Errorf("inspectp: metadata %+v, want %v", m, meta)
	}
	if !reflect.DeepEqual(st.Status.Labels, labels) {
		t.Errorf("inspectp: labels %v, want exactly %v", st.Status.Labels, labels)
	}
	if !reflect.DeepEqual(st.Status.Annotations, annotations) {
		t.Errorf("inspectp: annotations %v, want exactly %v", st.Status.Annotations, annotations)
	}

	pods := h.Pods()
	p, ok := pods[id]
	if !ok {
		t.Fatalf("crictl pods does not list %s: %v", id, pods)
	}
	if len(pods) != 1 {
		t.Errorf("crictl pods lists %d pods, want 1", len(pods))
	}
	if p.State != "SANDBOX_READY" {
		t.Errorf("crictl pods: state %q, want SANDBOX_READY", p.State)
	}
	if p.Metadata.Name != meta["name"] || p.Metadata.UID != meta["uid"] || p.Metadata.Namespace != meta["namespace"] {
		t.Errorf("crictl pods: metadata %+v, want %v", p.Metadata, meta)
	}
	if !reflect.DeepEqual(p.Labels, labels) {
		t.Errorf("crictl pods: labels %v, want exactly %v", p.Labels, labels)
	}
	if !reflect.DeepEqual(p.Annotations, annotations) {
		t.Errorf("crictl pods: annotations %v, want exactly %v", p.Annotations, annotations)
	}

	// Filters crictl offers kubelet-style.
	if out := strings.TrimSpace(h.Crictl("pods", "-q", "--name", meta["name"].(string))); out != id {
		t.Errorf("crictl pods --name %s: %q, want %q", meta["name"], out, id)
	}
	if out := strings.TrimSpace(h.Crictl("pods", "-q", "--label", "tier=one")); out != id {
		t.Errorf("crictl pods --label tier=one: %q, want %q", out, id)
	}
	if out := strings.TrimSpace(h.Crictl("pods", "-q", "--label", "tier=two")); out != "" {
		t.Errorf("crictl pods --label tier=two: %q, want nothing", out)
	}

	// The hostname is the pod's (UTS namespace).
	pid := h.PausePID(id)
	if out, err := execIn(pid, "uts", "hostname"); err != nil || strings.TrimSpace(out) != "ready-host" {
		t.Errorf("hostname in pod's UTS namespace: %q (%v), want ready-host", out, err)
	}
}

// TestStopRemoveIdempotent: stopp and rmp (RemovePodSandbox) succeed twice
// each and for an unknown ID; stop kills pause and releases the IP; after rmp nothing of the
// pod remains.
func TestStopRemoveIdempotent(t *testing.T) {
	h := start(t, Options{})
	// Run a pod first so the bridge and CNI's shared chains exist in both
	// snapshots: they are the network's, not the pod's.
	warm := h.RunPod(podConfig("warm"))
	h.Crictl("stopp", warm)
	h.Crictl("rmp", warm)
	before := h.snapshot()

	id := h.RunPod(podConfig("stoprm"))
	pid := h.PausePID(id)
	if seen := leaks(before, h.snapshot()); len(seen) == 0 {
		t.Errorf("the leak checker sees nothing of a running pod; it is blind")
	} else {
		t.Logf("a running pod, as the leak checker sees it:\n  %s", strings.Join(seen, "\n  "))
	}

	h.Crictl("stopp", id)
	if st := h.Inspect(id); st.Status.State != "SANDBOX_NOTREADY" {
		t.Errorf("after stopp: state %q, want SANDBOX_NOTREADY", st.Status.State)
	}
	eventually(t, 10*time.Second, fmt.Sprintf("pause pid %d gone after stopp", pid), func() (bool, string) {
		return !alive(pid), fmt.Sprintf("pid %d is %s", pid, processName(pid))
	})
	eventually(t, 10*time.Second, "IP released after stopp", func() (bool, string) {
		l := h.snapshot()[kindIPAM]
		return len(l) == 0, fmt.Sprint(l)
	})
	h.Crictl("stopp", id)
	if st := h.Inspect(id); st.Status.State != "SANDBOX_NOTREADY" {
		t.Errorf("after second stopp: state %q, want SANDBOX_NOTREADY", st.Status.State)
	}

	h.Crictl("rmp", id)
	if _, ok := h.Pods()[id]; ok {
		t.Errorf("crictl pods still lists %s after rmp", id)
	}
	if _, errOut, err := h.crictlRaw("inspectp", id); err == nil {
		t.Errorf("crictl inspectp %s after rmp succeeded; want NotFound", id)
	} else if !strings.Contains(errOut, "NotFound") && !strings.Contains(strings.ToLower(errOut), "not found") {
		t.Errorf("crictl inspectp %s after rmp: %q, want NotFound", id, errOut)
	}
	// crictl rmp asks PodSandboxStatus before it removes, so on any runtime
	// it fails for a pod that is gone; kubelet calls RemovePodSandbox
	// directly, and so does the rest of this test.
	c := h.client()
	if _, err := c.RemovePodSandbox(ctx30(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Errorf("second RemovePodSandbox %s: %v", id, err)
	}

	unknown := randomHex(32)
	h.Crictl("stopp", unknown)
	if _, err := c.RemovePodSandbox(ctx30(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("RemovePodSandbox of unknown ID %s: %v", unknown, err)
	}

	for _, d := range []string{h.RunDir + "/pods/" + id, h.RootDir + "/pods/" + id} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("after rmp: %s still exists", d)
		}
	}
	h.checkLeaks(t, before, "after rmp")
}

// alive tells whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	_, state := procStat(pid)
	return state != "" && state != "Z"
}
