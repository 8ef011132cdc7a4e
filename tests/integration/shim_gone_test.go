//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShimGone: when a pod's shim dies (killed, or lost with a reboot),
// StopPodSandbox and RemovePodSandbox still release everything: cribd kills
// the pause process itself (after checking its PID and start time) and
// removes the cgroup.
func TestShimGone(t *testing.T) {
	h := start(t, Options{})
	id := h.RunPod(podConfig("shimgone"))
	pause := h.PausePID(id)
	data, err := os.ReadFile(filepath.Join(h.RunDir, "pods", id, "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	shim, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "shim gone", func() (bool, string) {
		return syscall.Kill(shim, 0) != nil, "shim still there"
	})
	h.Crictl("stopp", id)
	// Killed, it may linger as a zombie until PID 1 reaps it (the shim
	// that parented it is gone): that is dead enough.
	if _, state := procStat(pause); state != "" && state != "Z" && state != "X" {
		t.Errorf("pause process %d survived StopPodSandbox (state %s)", pause, state)
	}
	h.Crictl("rmp", id)
	if !h.Running() {
		t.Fatalf("cribd died:\n%s", tail(h.Log(), 40))
	}
}
