package cgroup

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveTree(t *testing.T) {
	for _, tc := range []struct {
		name string
		dirs []string // made below the temp dir before the call
		rm   string   // removed, relative to the temp dir
	}{
		{name: "missing", rm: "gone"},
		{name: "leaf", dirs: []string{"pod"}, rm: "pod"},
		{name: "nested", dirs: []string{"pod/a/x", "pod/b"}, rm: "pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := RemoveTree(context.Background(), filepath.Join(root, tc.rm)); err != nil {
				t.Fatalf("RemoveTree: %v", err)
			}
			if _, err := os.Stat(filepath.Join(root, tc.rm)); !os.IsNotExist(err) {
				t.Errorf("%s still there (%v)", tc.rm, err)
			}
		})
	}
}

// A directory that is not a cgroup and not empty fails with its name, not
// a wait: only EBUSY is retried.
func TestRemoveTreeNotEmpty(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := RemoveTree(context.Background(), root)
	if err == nil {
		t.Fatal("RemoveTree of a directory holding a file: no error")
	}
	if want := "remove cgroup " + root; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
		t.Errorf("error %q does not name %s", err, root)
	}
}
