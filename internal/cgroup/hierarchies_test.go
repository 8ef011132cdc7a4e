package cgroup

import (
	"slices"
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
