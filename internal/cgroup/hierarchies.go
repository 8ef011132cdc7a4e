package cgroup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Root is where the cgroup hierarchies are mounted: the v1 controllers and
// a hybrid host's cgroup2 below it, a pure v2 host's cgroup2 at it.
const Root = "/sys/fs/cgroup"

// mounts lists the cgroup and cgroup2 mounts of this process's mount
// namespace. It is crib's one reader of the cgroup mounts: the mountinfo
// library undoes the octal escapes of mount paths (`\040` for a space,
// `\011`, `\012`, `\134`), as readMounts' test shows.
func mounts() ([]*mountinfo.Info, error) {
	ms, err := mountinfo.GetMounts(cgroupFS)
	if err != nil {
		return nil, fmt.Errorf("list cgroup mounts: %w", err)
	}
	return ms, nil
}

// readMounts is mounts from a mountinfo file's content.
func readMounts(r io.Reader) ([]*mountinfo.Info, error) {
	return mountinfo.GetMountsFromReader(r, cgroupFS)
}

// cgroupFS keeps the cgroup and cgroup2 file systems.
func cgroupFS(m *mountinfo.Info) (skip, stop bool) {
	return m.FSType != "cgroup" && m.FSType != "cgroup2", false
}

// Hierarchies returns the mount points of every cgroup and cgroup2
// filesystem at or below Root, once each, sorted (this host: cpu, cpuacct,
// ..., systemd and the controller-less unified one; a v2 host: Root
// itself).
func Hierarchies() ([]string, error) {
	ms, err := mounts()
	if err != nil {
		return nil, err
	}
	return underRoot(ms, Root), nil
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

// ControllerMounted reports whether the controller can be used: on a
// cgroup v1 (or hybrid) node, whether a v1 hierarchy carries it (the v1
// manager ignores a hybrid node's cgroup2 mount); on a pure v2 node,
// whether the cgroup2 mount offers it.
func ControllerMounted(controller string) (bool, error) {
	ms, err := mounts()
	if err != nil {
		return false, err
	}
	return controllerMounted(ms, controller, func(dir string) string {
		data, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		return string(data)
	}), nil
}

// controllerMounted is ControllerMounted over mounts; v2Controllers reads
// a cgroup2 mount's cgroup.controllers.
func controllerMounted(mounts []*mountinfo.Info, controller string, v2Controllers func(dir string) string) bool {
	v1 := false
	for _, m := range mounts {
		if m.FSType != "cgroup" {
			continue
		}
		v1 = true
		for _, o := range strings.Split(m.VFSOptions, ",") {
			if o == controller {
				return true
			}
		}
	}
	if v1 {
		return false
	}
	for _, m := range mounts {
		for _, c := range strings.Fields(v2Controllers(m.Mountpoint)) {
			if c == controller {
				return true
			}
		}
	}
	return false
}
