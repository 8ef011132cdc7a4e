package cgroup

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func TestUnderRoot(t *testing.T) {
	m := func(points ...string) []*mountinfo.Info {
		var out []*mountinfo.Info
		for _, p := range points {
			out = append(out, &mountinfo.Info{Mountpoint: p})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		mounts []*mountinfo.Info
		want   []string
	}{
		// A pure v2 host mounts cgroup2 at the root itself: the shim used
		// to keep only mounts below it, and saw none there.
		{"v2", m("/sys/fs/cgroup"), []string{"/sys/fs/cgroup"}},
		{"hybrid", m("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory"),
			[]string{"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"}},
		{"duplicates and elsewhere", m("/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory", "/run/container/cgroup", "/sys/fs/cgroupx"),
			[]string{"/sys/fs/cgroup/memory"}},
	} {
		if got := underRoot(tc.mounts, Root); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReadMounts: the cgroup mounts of a mountinfo file, with the octal
// escapes of mount points undone, the other file systems left out; then
// the hierarchies and the usable controllers they give.
func TestReadMounts(t *testing.T) {
	const (
		hybrid = `25 1 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
40 1 0:40 / /run/my\040mounts/cg\134x rw,relatime - cgroup cgroup rw,pids
41 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
`
		v2 = `25 1 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
26 1 0:24 / /sys/fs/cgroup/sub\040dir rw - cgroup2 cgroup2 rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
`
	)
	v2Controllers := func(dir string) string {
		return map[string]string{"/sys/fs/cgroup": "cpuset cpu io memory hugetlb pids"}[dir]
	}
	for _, tc := range []struct {
		name        string
		mountinfo   string
		points      []string
		hierarchies []string
		usable      map[string]bool
	}{
		{
			name:      "hybrid",
			mountinfo: hybrid,
			points: []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/cpu,cpuacct",
				"/sys/fs/cgroup/memory", `/run/my mounts/cg\x`},
			hierarchies: []string{"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"},
			// The v1 manager ignores the hybrid cgroup2 mount.
			usable: map[string]bool{"memory": true, "cpu": true, "pids": true, "hugetlb": false, "io": false},
		},
		{
			name:        "v2",
			mountinfo:   v2,
			points:      []string{"/sys/fs/cgroup", "/sys/fs/cgroup/sub dir"},
			hierarchies: []string{"/sys/fs/cgroup", "/sys/fs/cgroup/sub dir"},
			usable:      map[string]bool{"memory": true, "hugetlb": true, "rdma": false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := readMounts(strings.NewReader(tc.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			var points []string
			for _, m := range ms {
				points = append(points, m.Mountpoint)
			}
			if !slices.Equal(points, tc.points) {
				t.Errorf("mount points %q, want %q", points, tc.points)
			}
			if got := underRoot(ms, Root); !slices.Equal(got, tc.hierarchies) {
				t.Errorf("hierarchies %q, want %q", got, tc.hierarchies)
			}
			for ctrl, want := range tc.usable {
				if got := controllerMounted(ms, ctrl, v2Controllers); got != want {
					t.Errorf("controller %s usable: %v, want %v", ctrl, got, want)
				}
			}
		})
	}
}

// TestControllerMounted asks this machine.
func TestCgroupControllerMounted(t *testing.T) {
	mounts, err := Hierarchies()
	if err != nil || len(mounts) == 0 {
		t.Skipf("no cgroup mounts here: %v", err)
	}
	if ok, err := ControllerMounted("memory"); err != nil || !ok {
		t.Errorf("memory controller: %v %v", ok, err)
	}
	if ok, _ := ControllerMounted("hugetlb"); ok {
		// This machine (cgroup v1 + a hybrid cgroup2 mount offering hugetlb)
		// has no v1 hugetlb hierarchy: the v1 manager cannot use it.
		if _, err := os.Stat("/sys/fs/cgroup/hugetlb"); err != nil {
			t.Errorf("hugetlb reported usable without a v1 hierarchy")
		}
	}
	if ok, _ := ControllerMounted("no-such-controller"); ok {
		t.Errorf("a made-up controller is mounted?")
	}
}
