package sandbox

import (
	"fmt"
	"syscall"

	"github.com/crib-runtime/crib/internal/procfs"
)

// clampOOMScoreAdj raises want to floor: without CAP_SYS_RESOURCE a value
// below the current one cannot be written, and kubelet's -998 for sandboxes
// must not fail the pod.
func clampOOMScoreAdj(want, floor int) int {
	if want < floor {
		return floor
	}
	return want
}

// processAlive reports whether pid is the live, non-zombie process that
// started at start.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := procfs.StartTime(pid)
	return err == nil && got == start
}

// killProcess sends SIGKILL to pid if it is still the process that started
// at start; a gone or reused PID is left alone.
func killProcess(pid int, start uint64) error {
	if !processAlive(pid, start) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	return nil
}
