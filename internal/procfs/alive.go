package procfs

import (
	"fmt"
	"syscall"
)

// Alive reports whether pid is the live, non-zombie process that started
// at start (StartTime): a PID alone may have been reused.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, err := StartTime(pid)
	return err == nil && got == start
}

// Kill sends SIGKILL to pid if it is still the process that started at
// start; a gone or reused PID is left alone.
func Kill(pid int, start uint64) error {
	if !Alive(pid, start) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	return nil
}
