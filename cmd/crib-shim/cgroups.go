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
