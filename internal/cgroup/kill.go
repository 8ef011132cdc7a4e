package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxKillRounds bounds Kill against a cgroup whose processes fork as fast
// as they are killed.
const maxKillRounds = 10

// KillPoll is how long Kill waits between rounds for the killed processes
// to leave the cgroup.
const KillPoll = 10 * time.Millisecond

// Kill sends SIGKILL to every process in the cgroup of cgroupsPath, in
// every hierarchy, until none is left (processes forked meanwhile
// included). A cgroup that does not exist is empty.
func Kill(ctx context.Context, hierarchies []string, cgroupsPath string) error {
	if cgroupsPath == "" || cgroupsPath == "/" {
		return nil
	}
	dir, err := Dir(cgroupsPath)
	if err != nil {
		return err
	}
	for round := 0; round < maxKillRounds; round++ {
		pids, err := Procs(hierarchies, dir)
		if err != nil || len(pids) == 0 {
			return err
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill pid %d of cgroup %s: %w", pid, dir, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(KillPoll):
		}
	}
	return fmt.Errorf("cgroup %s still has processes after %d rounds of SIGKILL", dir, maxKillRounds)
}

// Procs lists the processes of cgroup directory dir in every hierarchy
// (each PID once).
func Procs(hierarchies []string, dir string) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, h := range hierarchies {
		data, err := os.ReadFile(filepath.Join(h, dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list processes of cgroup %s: %w", dir, err)
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out, nil
}

// Remove removes the cgroup of a pod's pause process or of a container
// whose shim is gone, given its OCI cgroupsPath: under systemd its scope
// is stopped first through units (which kills what is left in it); then
// its directory goes in every hierarchy, waiting while its last processes
// exit.
func Remove(ctx context.Context, units Units, hierarchies []string, cgroupsPath string) error {
	if cgroupsPath == "" || cgroupsPath == "/" {
		return nil
	}
	dir, err := Dir(cgroupsPath)
	if err != nil {
		return err
	}
	if IsSystemd(cgroupsPath) {
		if units == nil {
			return fmt.Errorf("cgroup %s is a systemd scope, but cribd does not run with the systemd cgroup driver", cgroupsPath)
		}
		scope, _ := ParseScope(cgroupsPath)
		if err := units.Stop(ctx, scope.Unit()); err != nil {
			return err
		}
	}
	for _, h := range hierarchies {
		if err := RemoveTree(ctx, filepath.Join(h, dir)); err != nil {
			return err
		}
	}
	return nil
}
