package container

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteArchive: the archive holds the work directory's files and
// directories under relative names and appears only whole; a work
// directory it cannot archive leaves neither the archive nor its partial
// file.
func TestWriteArchive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		symlink bool
		want    []string
	}{
		{name: "files and directories", want: []string{"checkpoint/", "checkpoint/inventory.img", "config.dump"}},
		{name: "a symlink is refused", symlink: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work, out := t.TempDir(), t.TempDir()
			if err := os.Mkdir(filepath.Join(work, "checkpoint"), 0o700); err != nil {
				t.Fatal(err)
			}
			for name, data := range map[string]string{"checkpoint/inventory.img": "images", "config.dump": "{}"} {
				if err := os.WriteFile(filepath.Join(work, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.symlink {
				if err := os.Symlink("/etc/shadow", filepath.Join(work, "link")); err != nil {
					t.Fatal(err)
				}
			}
			location := filepath.Join(out, "checkpoint.tar")
			err := writeArchive(work, location)
			if tc.symlink {
				if err == nil {
					t.Fatal("writeArchive archived a symlink")
				}
				if left, _ := os.ReadDir(out); len(left) != 0 {
					t.Errorf("left after a failed archive: %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(location)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var names []string
			tr := tar.NewReader(f)
			for {
				hdr, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, hdr.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.want) {
				t.Errorf("archive holds %v, want %v", names, tc.want)
			}
			if _, err := os.Stat(location + ".crib-partial"); !os.IsNotExist(err) {
				t.Errorf("partial file after success: %v", err)
			}
		})
	}
}

// TestCriuErrors: the last three error lines of CRIU's log, joined.
func TestCriuErrors(t *testing.T) {
	dir := t.TempDir()
	log := "(00.001) Version: 3.17\n(00.002) Error (criu/a.c:1): one\n(00.003) ok\n" +
		"(00.004) Error (criu/b.c:2): two\n(00.005) Error (criu/c.c:3): three\n(00.006) Error (criu/d.c:4): four\n"
	if err := os.WriteFile(filepath.Join(dir, "dump.log"), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "(00.004) Error (criu/b.c:2): two | (00.005) Error (criu/c.c:3): three | (00.006) Error (criu/d.c:4): four"
	if got := criuErrors(filepath.Join(dir, "dump.log")); got != want {
		t.Errorf("criuErrors = %q, want %q", got, want)
	}
	if got := criuErrors(filepath.Join(dir, "missing.log")); got != "" {
		t.Errorf("criuErrors of a missing log = %q", got)
	}
}
