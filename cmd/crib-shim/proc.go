package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procStat is what crib-shim reads from /proc/<pid>/stat.
type procStat struct {
	Comm      string // field 2, without the parentheses
	State     byte   // field 3: R, S, D, Z, X, ...
	PPid      int    // field 4
	StartTime uint64 // field 22: start time in clock ticks after boot
}

// readProcStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	// After ")" come fields 3, 4, ...; field n is at index n-3.
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat ppid: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat starttime: %w", pid, err)
	}
	var comm string
	if j := bytes.IndexByte(data, '('); j >= 0 && j < i {
		comm = string(data[j+1 : i])
	}
	return procStat{Comm: comm, State: f[0][0], PPid: ppid, StartTime: start}, nil
}

// childPids lists the children of the calling process, from
// /proc/self/task/*/children (each thread lists the children it forked, and
// orphans reparented to the thread it was given to).
func childPids() ([]int, error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "children"))
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

// selfOOMScoreAdj reads the shim's own oom_score_adj.
func selfOOMScoreAdj() (int, error) {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}
