//go:build integration

package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ppid is the parent PID of pid.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		var p int
		if _, err := fmt.Sscanf(line, "PPid:\t%d", &p); err == nil {
			return p
		}
	}
	return -1
}

// TestRestart: after kill -9 and a restart on the same directories cribd
// lists the same pods in the same states with the same pause processes; a
// pause killed while cribd was down shows as NOTREADY after the restart.
func TestRestart(t *testing.T) {
	h := start(t, Options{})
	ready1 := h.RunPod(podConfig("restart-1"))
	ready2 := h.RunPod(podConfig("restart-2"))
	stopped := h.RunPod(podConfig("restart-stopped"))
	h.Crictl("stopp", stopped)
	pid1, pid2 := h.PausePID(ready1), h.PausePID(ready2)
	ip1 := h.Inspect(ready1).Status.Network.IP
	before := h.Pods()

	shim1 := shimPID(ready1)
	if shim1 == 0 {
		t.Fatalf("no crib-shim process names pod %s", ready1)
	}

	// Restart 1: nothing changes while cribd is down.
	h.Kill()
	for _, pid := range []int{pid1, pid2, shim1} {
		if !alive(pid) {
			t.Fatalf("%s pid %d died with cribd", processName(pid), pid)
		}
	}
	t.Logf("with cribd killed, pod %s's crib-shim (pid %d) has parent %d", ready1, shim1, ppid(shim1))
	h.Start()
	after := h.Pods()
	if len(after) != len(before) {
		t.Errorf("after restart crictl pods lists %d pods, before %d", len(after), len(before))
	}
	for id, b := range before {
		a, ok := after[id]
		switch {
		case !ok:
			t.Errorf("after restart pod %s (%s) is gone", id, b.Metadata.Name)
		case a.State != b.State:
			t.Errorf("after restart pod %s (%s) is %s, was %s", id, b.Metadata.Name, a.State, b.State)
		case a.Metadata != b.Metadata:
			t.Errorf("after restart pod %s metadata %+v, was %+v", id, a.Metadata, b.Metadata)
		}
	}
	if got := h.PausePID(ready1); got != pid1 {
		t.Errorf("after restart pod %s pause pid %d, was %d", ready1, got, pid1)
	}
	if got := h.PausePID(ready2); got != pid2 {
		t.Errorf("after restart pod %s pause pid %d, was %d", ready2, got, pid2)
	}
	if got := h.Inspect(ready1).Status.Network.IP; got != ip1 {
		t.Errorf("after restart pod %s IP %q, was %q", ready1, got, ip1)
	}

	// Restart 2: a pause dies while cribd is down.
	h.Kill()
	if err := syscall.Kill(pid2, syscall.SIGKILL); err != nil {
		t.Fatalf("kill pause %d: %v", pid2, err)
	}
	eventually(t, 10*time.Second, fmt.Sprintf("pause pid %d dead", pid2), func() (bool, string) {
		return !alive(pid2), "still alive"
	})
	h.Start()
	eventually(t, 15*time.Second, fmt.Sprintf("pod %s NOTREADY after its pause died", ready2), func() (bool, string) {
		st := h.Inspect(ready2).Status.State
		return st == "SANDBOX_NOTREADY", "state " + st
	})
	if st := h.Inspect(ready1).Status.State; st != "SANDBOX_READY" {
		t.Errorf("pod %s: state %s after the restart, want SANDBOX_READY", ready1, st)
	}
	if got := h.PausePID(ready1); got != pid1 {
		t.Errorf("after second restart pod %s pause pid %d, was %d", ready1, got, pid1)
	}
	if st := h.Inspect(stopped).Status.State; st != "SANDBOX_NOTREADY" {
		t.Errorf("stopped pod %s: state %s after restarts, want SANDBOX_NOTREADY", stopped, st)
	}
	if got := shimPID(ready1); got != shim1 {
		t.Errorf("after restarts pod %s's crib-shim is pid %d, was %d", ready1, got, shim1)
	}

	// The dead pod still stops and goes away cleanly; cleanup checks leaks.
	h.Crictl("stopp", ready2)
	h.Crictl("rmp", ready2)
}

// shimPID finds the crib-shim process whose command line names pod id.
func shimPID(id string) int {
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || processName(pid) != "crib-shim" {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), id) && alive(pid) {
			return pid
		}
	}
	return 0
}
