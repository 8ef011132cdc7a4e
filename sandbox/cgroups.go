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

// cgroupMounts returns the mount points of every cgroup v1 hierarchy and of
// the cgroup2 mount.
func cgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
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
		if len(post) > 0 && len(pre) > 4 && (post[0] == "cgroup" || post[0] == "cgroup2") {
			out = append(out, pre[4])
		}
	}
	return out, sc.Err()
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
