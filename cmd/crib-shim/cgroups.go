package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where crib expects the cgroup hierarchies to be mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupHierarchies returns the mount points of every cgroup and cgroup2
// filesystem under cgroupRoot (on this host: cpu, cpuacct, ..., systemd and
// the controller-less unified one), from /proc/self/mountinfo.
func cgroupHierarchies() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := make(map[string]bool)
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, after := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(after) < 1 {
			continue
		}
		if fstype := after[0]; fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		mnt := unescapeMountPath(fields[4])
		if !strings.HasPrefix(mnt, cgroupRoot+"/") || seen[mnt] {
			continue
		}
		seen[mnt] = true
		mounts = append(mounts, mnt)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return mounts, nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space, ...).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupDirs removes what crib-shim's containers leave in the cgroup
// hierarchies. libcontainer creates a container's cgroup, and every missing
// parent, in each hierarchy it manages; Destroy removes only the leaf, and
// only in those hierarchies. cgroupDirs remembers which ancestors did not
// exist before a Create (claim) and, when a container is deleted (release),
// removes the leaf in every hierarchy and then the claimed ancestors that
// are empty, deepest first. A pod's containers share ancestors (the pod
// cgroup), so ownership is per shim, not per container: the ancestor goes
// with the last container below it, in whatever order they are deleted.
//
// Callers serialise claim and release against container creation (the
// reaper's spawn lock), so a release never removes a directory that a
// concurrent create is about to use.
type cgroupDirs struct {
	mu          sync.Mutex
	hierarchies []string
	owned       map[string]struct{} // absolute directories the shim created
}

func newCgroupDirs() (*cgroupDirs, error) {
	h, err := cgroupHierarchies()
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	return &cgroupDirs{hierarchies: h, owned: make(map[string]struct{})}, nil
}

// checkCgroupPath accepts only absolute paths below the hierarchy roots: a
// relative path would be resolved against the shim's own cgroup.
func checkCgroupPath(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return fmt.Errorf("cgroupsPath %q must be a clean absolute path below the root", p)
	}
	return nil
}

// claim records, in every hierarchy, the ancestors of cgPath (not cgPath
// itself) that do not exist yet.
func (d *cgroupDirs) claim(cgPath string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.hierarchies {
		for p := filepath.Dir(cgPath); p != "/"; p = filepath.Dir(p) {
			dir := filepath.Join(h, p)
			if _, err := os.Lstat(dir); err == nil {
				break // it and all its ancestors exist
			}
			d.owned[dir] = struct{}{}
		}
	}
}

// release removes cgPath in every hierarchy, then the claimed ancestors of
// cgPath that are empty. A leaf that stays busy is an error; a busy ancestor
// is not (another container still uses it).
func (d *cgroupDirs) release(cgPath string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, h := range d.hierarchies {
		if err := removeCgroupTree(filepath.Join(h, cgPath)); err != nil {
			errs = append(errs, err)
		}
	}
	var ancestors []string
	for _, h := range d.hierarchies {
		for p := filepath.Dir(cgPath); p != "/"; p = filepath.Dir(p) {
			if dir := filepath.Join(h, p); d.isOwned(dir) {
				ancestors = append(ancestors, dir)
			}
		}
	}
	// Deepest first: longer paths are below shorter ones.
	sort.Slice(ancestors, func(i, j int) bool { return len(ancestors[i]) > len(ancestors[j]) })
	for _, dir := range ancestors {
		err := unix.Rmdir(dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			delete(d.owned, dir)
		case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
			// Still in use by another container of this pod.
		default:
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}

func (d *cgroupDirs) isOwned(dir string) bool {
	_, ok := d.owned[dir]
	return ok
}

// removeCgroupTree removes the cgroup directory dir and its sub-cgroups,
// retrying for a while on EBUSY (tasks that were just killed may not have
// left yet). A missing dir is not an error.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	delay := time.Millisecond
	for deadline := time.Now().Add(2 * time.Second); ; {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// warmAttach starts, in the background, a no-op move of the shim into the
// cgroup it is already in, so that libcontainer's moves of a new container's
// init into its cgroups, some milliseconds later, do not wait for the
// kernel. The shim calls it at start-up (cribd's first request is the pause
// container's Create) and when a Create request arrives.
//
// Every write to a cgroup.procs file takes the kernel's global
// cgroup_threadgroup_rwsem for writing. It is a per-CPU rw-semaphore: the
// first writer after a quiet spell waits for an RCU grace period before it
// gets the lock (rcu_sync_enter), and writers that follow within about one
// grace period of the last do not. libcontainer's first attach (cpuset) paid
// that wait at every container start, on the pause path: a median of 11 ms
// (up to 24 ms) on the benchmark host (2 vCPUs, kernel 6.18). Started early,
// the wait overlaps the shim's start-up, the request's decoding and
// libcontainer's setup; the cpuset attach then took a median of 1.1 ms. The
// write itself changes nothing: the shim stays where it is. (Hosts that
// mount their cgroup hierarchies with "favordynmods" have no such wait.)
func warmAttach() {
	go func() {
		procs, err := ownCgroupProcs()
		if err == nil {
			err = os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0)
		}
		if err != nil {
			logrus.WithError(err).Debug("warm cgroup attach")
		}
	}()
}

// ownCgroupProcs is the cgroup.procs file of the shim's own cgroup, in the
// devices hierarchy on cgroup v1 (always mounted where libcontainer runs
// containers) or in the unified hierarchy. It is looked up afresh each time:
// a stale path would move the shim.
func ownCgroupProcs() (string, error) {
	if cgroups.IsCgroup2UnifiedMode() {
		paths, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
		if err != nil {
			return "", err
		}
		own, ok := paths[""]
		if !ok {
			return "", errors.New("no unified cgroup in /proc/self/cgroup")
		}
		return filepath.Join(cgroupRoot, own, "cgroup.procs"), nil
	}
	dir, err := cgroups.GetOwnCgroupPath("devices")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "cgroup.procs"), nil
}
