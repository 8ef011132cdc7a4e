package cgroup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

// TestOOMWatch drives OOMWatch with ordinary files standing for a cgroup
// v2 directory's memory.events and cgroup.events: a write to a watched
// file notifies like the kernel's, and a rename over it changes what a
// read finds without notifying, as a rate-limited notification does.
func TestOOMWatch(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	const (
		noKill    = "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n"
		killed    = "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n"
		populated = "populated 1\nfrozen 0\n"
		empty     = "populated 0\nfrozen 0\n"
	)
	write := func(t *testing.T, dir, name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	replace := func(t *testing.T, dir, name, content string) {
		t.Helper()
		tmp := filepath.Join(dir, name+".new")
		write(t, dir, name+".new", content)
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		startKills string // memory.events when the watch begins
		act        func(t *testing.T, dir string)
		want       bool
		wantDone   bool
	}{
		{"kill counted before the watch", killed, nil, true, true},
		{"kill notified", noKill, func(t *testing.T, dir string) { write(t, dir, "memory.events", killed) }, true, true},
		{"emptied without a kill", noKill, func(t *testing.T, dir string) { write(t, dir, "cgroup.events", empty) }, false, true},
		// The case libcontainer's watcher loses: the kill is counted but
		// its notification comes after the one saying the cgroup is empty.
		{"kill notified late, after the cgroup emptied", noKill, func(t *testing.T, dir string) {
			replace(t, dir, "memory.events", killed)
			write(t, dir, "cgroup.events", empty)
		}, true, true},
		{"cgroup removed", noKill, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "memory.events"))
			write(t, dir, "cgroup.events", empty)
		}, false, true},
		{"still running", noKill, func(t *testing.T, dir string) { write(t, dir, "memory.events", noKill) }, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "memory.events", tc.startKills)
			write(t, dir, "cgroup.events", populated)
			w, err := WatchOOMKills(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.act != nil {
				tc.act(t, dir)
			}
			if tc.wantDone {
				select {
				case <-w.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("watch did not end")
				}
			}
			w.Stop()
			if got := w.Killed(); got != tc.want {
				t.Errorf("Killed() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestWatchOOMKillsNoCgroup(t *testing.T) {
	if _, err := WatchOOMKills(filepath.Join(t.TempDir(), "gone")); err == nil {
		t.Fatal("WatchOOMKills of a missing directory: no error")
	}
}
