package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// readOOMScoreAdj returns this process's oom_score_adj.
func readOOMScoreAdj() (int, error) {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, fmt.Errorf("read oom_score_adj: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("parse oom_score_adj %q: %w", data, err)
	}
	return v, nil
}

// clampOOMScoreAdj raises want to floor: without CAP_SYS_RESOURCE a value
// below the current one cannot be written, and kubelet's -998 for sandboxes
// must not fail the pod.
func clampOOMScoreAdj(want, floor int) int {
	if want < floor {
		return floor
	}
	return want
}

// processStartTime returns field 22 (starttime) of /proc/<pid>/stat and
// whether the process is a zombie.
func processStartTime(pid int) (start uint64, zombie bool, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	return parseStat(data)
}

// parseStat reads the state and starttime fields of a /proc/<pid>/stat line.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(data []byte) (start uint64, zombie bool, err error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("malformed stat %q", data)
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("malformed stat %q", data)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("malformed starttime in stat: %w", err)
	}
	return start, fields[0] == "Z" || fields[0] == "X", nil
}

// processAlive reports whether pid is the live, non-zombie process that
// started at start.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	got, zombie, err := processStartTime(pid)
	return err == nil && !zombie && got == start
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
