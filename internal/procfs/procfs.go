// Package procfs reads the few process facts crib needs from /proc: a
// process's state, parent and start time (to tell a live process from a
// zombie or a reused PID), an oom_score_adj and the calling process's
// children.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what crib reads from /proc/<pid>/stat.
type Stat struct {
	Comm      string // field 2, without the parentheses
	State     byte   // field 3: R, S, D, Z, X, ...
	PPid      int    // field 4
	StartTime uint64 // field 22: start time in clock ticks after boot
}

// Dead reports whether the process has exited and waits to be reaped (Z)
// or is being torn down (X).
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/<pid>/stat. A gone process gives an error satisfying
// errors.Is(err, fs.ErrNotExist).
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(data)
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// ParseStat parses the contents of a /proc/<pid>/stat file. The command
// name (field 2) may hold spaces and parentheses, so the fields after it are
// counted from the last ')'.
func ParseStat(data []byte) (Stat, error) {
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return Stat{}, fmt.Errorf("malformed stat %q: no (comm)", data)
	}
	// After ")" come fields 3, 4, ...: field n is at index n-3.
	f := strings.Fields(string(data[closing+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("malformed stat %q: %d fields", data, len(f)+2)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed ppid in stat: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed starttime in stat: %w", err)
	}
	return Stat{Comm: string(data[open+1 : closing]), State: f[0][0], PPid: ppid, StartTime: start}, nil
}

// StartTime returns the start time of pid, or an error if the process is
// gone or dead (a zombie is as good as gone to a caller that means to
// signal or adopt it).
func StartTime(pid int) (uint64, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return 0, err
	}
	if st.Dead() {
		return 0, fmt.Errorf("process %d has exited (state %c)", pid, st.State)
	}
	return st.StartTime, nil
}

// SelfOOMScoreAdj returns the calling process's oom_score_adj.
func SelfOOMScoreAdj() (int, error) {
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

// SelfChildren lists the children of the calling process, from
// /proc/self/task/*/children (each thread lists the children it forked, and
// orphans reparented to the thread it was given to).
func SelfChildren() ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue // the thread exited
		}
		for _, s := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(s); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}
