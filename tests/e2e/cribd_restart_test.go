//go:build e2e

package e2e

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCribdKilled: cribd dies by SIGKILL while kubelet runs a pod, and
// comes back: kubelet reconnects, and the pod keeps running with the same
// sandbox and the same container, not restarted.
func TestCribdKilled(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("busybox", busyboxManifest)
	before := waitRunning(t, k, "busybox", 1)
	podID := sandboxID(t, c, k, "busybox")
	ctrs := containers(t, c, podID)
	if len(ctrs) != 1 {
		t.Fatalf("crictl ps -a --pod %s: %d containers, want 1", podID, len(ctrs))
	}
	ctrPID := containerPID(t, c, ctrs[0].ID)

	c.Kill()
	if err := syscall.Kill(ctrPID, 0); err != nil {
		t.Fatalf("the container's process %d died with cribd: %v", ctrPID, err)
	}
	// kubelet notices: its relist fails while cribd is down.
	logHas(t, k.LogPath, 30*time.Second, "kubelet sees the runtime gone", "code = Unavailable")
	restartAt := len(readFile(k.LogPath))
	c.Start()

	// kubelet relists through the new cribd and syncs the pod twice
	// (syncFrequency 5s), deciding each time that nothing is to be done;
	// had it taken the container or the sandbox for gone, the first sync
	// would already have replaced it.
	const nothingToDo = "KillPod: false, CreateSandbox: false"
	eventually(t, 60*time.Second, "kubelet syncs the pod twice against the new cribd", func() (bool, string) {
		n := 0
		for _, line := range strings.Split(readFile(k.LogPath)[restartAt:], "\n") {
			if !strings.Contains(line, "computePodActions got for pod") || !strings.Contains(line, `pod="default/busybox-`+k.NodeName+`"`) {
				continue
			}
			if !strings.Contains(line, nothingToDo) || !strings.Contains(line, "ContainersToStart: [],") {
				t.Fatalf("after cribd's restart kubelet acts on the pod: %s", line)
			}
			n++
		}
		return n >= 2, fmt.Sprintf("%d syncs since the restart", n)
	})
	after := waitRunning(t, k, "busybox", 1)
	if cs := after.Status.ContainerStatuses[0]; cs.RestartCount != 0 || cs.ContainerID != before.Status.ContainerStatuses[0].ContainerID {
		t.Errorf("after cribd's restart kubelet reports %s (restarts %d), before %s", cs.ContainerID, cs.RestartCount, before.Status.ContainerStatuses[0].ContainerID)
	}
	if after.Status.PodIP != before.Status.PodIP {
		t.Errorf("podIP went from %s to %s", before.Status.PodIP, after.Status.PodIP)
	}
	var ids []string
	for id := range sandboxes(t, c, k, "busybox") {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) != 1 || ids[0] != podID {
		t.Errorf("cribd's sandboxes for the pod after the restart: %v, want only %s", ids, podID)
	}
	now := containers(t, c, podID)
	if len(now) != 1 || now[0].ID != ctrs[0].ID || now[0].State != "CONTAINER_RUNNING" {
		t.Errorf("containers after the restart: %+v, want only %s running", now, ctrs[0].ID)
	}
	if pid := containerPID(t, c, ctrs[0].ID); pid != ctrPID {
		t.Errorf("the container's process is %d, was %d", pid, ctrPID)
	}
}
