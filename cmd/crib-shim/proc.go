package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
