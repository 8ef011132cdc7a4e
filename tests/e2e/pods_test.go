//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// The scenarios' view of one static pod, from kubelet's /pods and cribd's
// crictl.

// waitPod polls kubelet's /pods until the static pod name satisfies cond,
// and returns it.
func waitPod(t *testing.T, k *Kubelet, timeout time.Duration, name, what string, cond func(KubeletPod) (bool, string)) KubeletPod {
	t.Helper()
	var pod KubeletPod
	eventually(t, timeout, name+": "+what, func() (bool, string) {
		p, ok, err := k.Pod(name)
		if err != nil {
			return false, err.Error()
		}
		if !ok {
			return false, "not listed in kubelet's /pods"
		}
		pod = p
		return cond(p)
	})
	return pod
}

// waitRunning waits until kubelet reports the pod Running with an IP and
// n containers, all ready.
func waitRunning(t *testing.T, k *Kubelet, name string, n int) KubeletPod {
	t.Helper()
	return waitPod(t, k, 120*time.Second, name, "Running and ready", func(p KubeletPod) (bool, string) {
		ready := len(p.Status.ContainerStatuses) == n
		for _, cs := range p.Status.ContainerStatuses {
			ready = ready && cs.Ready
		}
		return p.Status.Phase == "Running" && p.Status.PodIP != "" && ready, p.String()
	})
}

// String is a one-line summary for failure messages.
func (p KubeletPod) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %q podIP %q", p.Status.Phase, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, list := range [][]ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			fmt.Fprintf(&b, "; %s: ready %v restarts %d state %v", cs.Name, cs.Ready, cs.RestartCount, cs.State)
		}
	}
	return b.String()
}

// Container is the named container's status, if kubelet reports it.
func (p KubeletPod) Container(name string) (ContainerStatus, bool) {
	for _, cs := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
		if cs.Name == name {
			return cs, true
		}
	}
	return ContainerStatus{}, false
}

// Waiting is the reason of a waiting container, "" when it is not waiting.
func (cs ContainerStatus) Waiting() string {
	if w, ok := cs.State["waiting"].(map[string]any); ok {
		r, _ := w["reason"].(string)
		return r
	}
	return ""
}

// Condition is the status ("True", "False") of the pod condition typ.
func (p KubeletPod) Condition(typ string) string {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// sandboxes lists cribd's pod sandboxes of the static pod name, by ID.
func sandboxes(t *testing.T, c *harness.Cribd, k *Kubelet, name string) map[string]harness.PodListEntry {
	t.Helper()
	out := map[string]harness.PodListEntry{}
	for id, p := range c.Pods() {
		if p.Metadata.Name == name+"-"+k.NodeName {
			out[id] = p
		}
	}
	return out
}

// sandboxID is the one ready sandbox of the static pod name.
func sandboxID(t *testing.T, c *harness.Cribd, k *Kubelet, name string) string {
	t.Helper()
	var ready []string
	for id, p := range sandboxes(t, c, k, name) {
		if p.State == "SANDBOX_READY" {
			ready = append(ready, id)
		}
	}
	if len(ready) != 1 {
		t.Fatalf("pod %s: cribd has %d ready sandboxes %v, want 1", name, len(ready), ready)
	}
	return ready[0]
}

// Ctr is one item of `crictl ps -a -o json`.
type Ctr struct {
	ID           string `json:"id"`
	PodSandboxID string `json:"podSandboxId"`
	Metadata     struct {
		Name    string `json:"name"`
		Attempt int    `json:"attempt"`
	} `json:"metadata"`
	State string `json:"state"`
}

// containers lists the containers, running or not, of a sandbox.
func containers(t *testing.T, c *harness.Cribd, podID string) []Ctr {
	t.Helper()
	var list struct {
		Containers []Ctr `json:"containers"`
	}
	c.CrictlJSON(&list, "ps", "-a", "-o", "json", "--pod", podID)
	return list.Containers
}

// containerPID is the host PID of a running container's process.
func containerPID(t *testing.T, c *harness.Cribd, id string) int {
	t.Helper()
	var st struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	c.CrictlJSON(&st, "inspect", "-o", "json", id)
	if st.Info.Pid <= 0 {
		t.Fatalf("crictl inspect %s: no info.pid", id)
	}
	return st.Info.Pid
}

// nsOf names the namespace kind of pid ("net:[4026532...]").
func nsOf(t *testing.T, pid int, kind string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// logHas polls the file at path (kubelet's or cribd's log) for a line
// holding every one of subs, and returns that line.
func logHas(t *testing.T, path string, timeout time.Duration, what string, subs ...string) string {
	t.Helper()
	var found string
	eventually(t, timeout, what, func() (bool, string) {
		for _, line := range strings.Split(readFile(path), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				found = line
				return true, ""
			}
		}
		return false, fmt.Sprintf("no line of %s holds all of %q", path, subs)
	})
	return found
}
