package harness

import (
	"os"
	"path/filepath"
	"testing"
)

// MakeCgroupRoot creates path in every v1 hierarchy of this host's hybrid
// layout (kubelet requires its --cgroup-root to exist), with cpuset.cpus
// and cpuset.mems copied from the root so that children can hold tasks.
func MakeCgroupRoot(t testing.TB, path string) {
	t.Helper()
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "unified" || !e.IsDir() {
			continue
		}
		dir := filepath.Join("/sys/fs/cgroup", e.Name(), path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", dir, err)
		}
		if e.Name() == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuset", f))
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatalf("write %s/%s: %v", dir, f, err)
				}
			}
		}
	}
}
