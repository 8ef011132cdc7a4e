package service

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/cgroups"
)

func TestOOMKillCount(t *testing.T) {
	// The library reads only files of a cgroup file system unless told
	// that the test gives it ordinary directories.
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	dir := t.TempDir()
	write := func(name, content string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		file := map[string]string{"v1": "memory.oom_control", "v2": "memory.events"}[name]
		if err := os.WriteFile(filepath.Join(d, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	v1 := write("v1", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
	v2 := write("v2", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n")
	tests := []struct {
		name  string
		paths map[string]string
		want  uint64
	}{
		{"v1 memory.oom_control", map[string]string{"memory": v1, "cpu": "/nonexistent", "": "/nonexistent"}, 2},
		{"v2 memory.events", map[string]string{"": v2}, 1},
		{"unknown paths", nil, 0},
		{"cgroup gone", map[string]string{"": filepath.Join(dir, "gone")}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oomKillCount(tc.paths); got != tc.want {
				t.Errorf("oomKillCount = %d, want %d", got, tc.want)
			}
		})
	}
}
