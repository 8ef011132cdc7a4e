package cgroup

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"
)

// Root is where the cgroup hierarchies are mounted: the v1 controllers and
// a hybrid host's cgroup2 below it, a pure v2 host's cgroup2 at it.
const Root = "/sys/fs/cgroup"

// Hierarchies returns the mount points of every cgroup and cgroup2
// filesystem at or below Root, once each, sorted (this host: cpu, cpuacct,
// ..., systemd and the controller-less unified one; a v2 host: Root
// itself). The mountinfo library undoes the octal escapes of mount paths.
func Hierarchies() ([]string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("list cgroup mounts: %w", err)
	}
	return underRoot(mounts, Root), nil
}

// underRoot keeps the mount points at or below root, without duplicates.
func underRoot(mounts []*mountinfo.Info, root string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range mounts {
		p := filepath.Clean(m.Mountpoint)
		if p != root && !isBelow(p, root) || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// isBelow reports whether p is strictly below dir (both clean).
func isBelow(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}
