package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupMount is one cgroup filesystem mount from /proc/self/mountinfo.
type cgroupMount struct {
	point     string // mount point
	fstype    string // cgroup or cgroup2
	superOpts string // for v1, holds the controllers
}

// cgroupMountInfo lists the cgroup v1 hierarchies and the cgroup2 mount.
func cgroupMountInfo() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// <id> <parent> <maj:min> <root> <mountpoint> <opts> ... - <fstype> <source> <superopts>
		line := sc.Text()
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		post := strings.Fields(line[sep+3:])
		pre := strings.Fields(line[:sep])
		if len(post) > 2 && len(pre) > 4 && (post[0] == "cgroup" || post[0] == "cgroup2") {
			out = append(out, cgroupMount{point: pre[4], fstype: post[0], superOpts: post[2]})
		}
	}
	return out, sc.Err()
}

// cgroupMounts returns the mount points of every cgroup v1 hierarchy and of
// the cgroup2 mount.
func cgroupMounts() ([]string, error) {
	mounts, err := cgroupMountInfo()
	var out []string
	for _, m := range mounts {
		out = append(out, m.point)
	}
	return out, err
}

// removeCgroup removes the cgroup at path (relative to each hierarchy) in
// every hierarchy, waiting while its last processes exit.
func removeCgroup(ctx context.Context, path string) error {
	if path == "" || path == "/" {
		return nil
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return fmt.Errorf("list cgroup mounts: %w", err)
	}
	for _, mnt := range mounts {
		dir := filepath.Join(mnt, path)
		for {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("remove cgroup %s: %w", dir, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("remove cgroup %s: still busy: %w", dir, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// cgroupControllerMounted reports whether the controller can be used: on a
// cgroup v1 (or hybrid) node, whether a v1 hierarchy carries it (the v1
// manager ignores a hybrid node's cgroup2 mount); on a pure v2 node,
// whether the cgroup2 mount offers it.
func cgroupControllerMounted(controller string) (bool, error) {
	mounts, err := cgroupMountInfo()
	if err != nil {
		return false, fmt.Errorf("list cgroup mounts: %w", err)
	}
	v1 := false
	for _, m := range mounts {
		if m.fstype != "cgroup" {
			continue
		}
		v1 = true
		for _, o := range strings.Split(m.superOpts, ",") {
			if o == controller {
				return true, nil
			}
		}
	}
	if v1 {
		return false, nil
	}
	for _, m := range mounts {
		ctrls, _ := os.ReadFile(filepath.Join(m.point, "cgroup.controllers"))
		for _, c := range strings.Fields(string(ctrls)) {
			if c == controller {
				return true, nil
			}
		}
	}
	return false, nil
}
