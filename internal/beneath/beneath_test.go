package beneath

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// tree makes root/{logs,outside} with logs holding what setup plants; it
// returns root/logs (the trusted directory) and root/outside.
func tree(t *testing.T, setup func(logs, outside string)) (string, string) {
	t.Helper()
	root := t.TempDir()
	logs, outside := filepath.Join(root, "logs"), filepath.Join(root, "outside")
	for _, d := range []string{logs, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if setup != nil {
		setup(logs, outside)
	}
	return logs, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenLog(t *testing.T) {
	tests := []struct {
		name    string
		rel     string
		setup   func(t *testing.T, logs, outside string)
		wantErr error // nil: opens
	}{
		{name: "new file", rel: "c/0.log"},
		{name: "new file at top", rel: "0.log"},
		{name: "existing file appended", rel: "c/0.log", setup: func(t *testing.T, logs, _ string) {
			must(t, os.MkdirAll(filepath.Join(logs, "c"), 0o755))
			must(t, os.WriteFile(filepath.Join(logs, "c/0.log"), []byte("old\n"), 0o640))
		}},
		{name: "file is a symlink out", rel: "c/0.log", wantErr: ErrSymlink, setup: func(t *testing.T, logs, outside string) {
			must(t, os.MkdirAll(filepath.Join(logs, "c"), 0o755))
			must(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(logs, "c/0.log")))
		}},
		{name: "file is a symlink inside", rel: "c/0.log", wantErr: ErrSymlink, setup: func(t *testing.T, logs, _ string) {
			must(t, os.MkdirAll(filepath.Join(logs, "c"), 0o755))
			must(t, os.Symlink("1.log", filepath.Join(logs, "c/0.log")))
		}},
		{name: "directory is a symlink out", rel: "c/0.log", wantErr: ErrSymlink, setup: func(t *testing.T, logs, outside string) {
			must(t, os.Symlink(outside, filepath.Join(logs, "c")))
		}},
		{name: "deeper directory is a symlink", rel: "a/b/0.log", wantErr: ErrSymlink, setup: func(t *testing.T, logs, outside string) {
			must(t, os.MkdirAll(filepath.Join(logs, "a"), 0o755))
			must(t, os.Symlink(outside, filepath.Join(logs, "a/b")))
		}},
		{name: "fifo", rel: "0.log", wantErr: unix.ENXIO, setup: func(t *testing.T, logs, _ string) {
			must(t, unix.Mkfifo(filepath.Join(logs, "0.log"), 0o640))
		}},
		{name: "hard link", rel: "0.log", wantErr: ErrNotRegular, setup: func(t *testing.T, logs, outside string) {
			must(t, os.WriteFile(filepath.Join(outside, "victim"), nil, 0o640))
			must(t, os.Link(filepath.Join(outside, "victim"), filepath.Join(logs, "0.log")))
		}},
		{name: "dot dot", rel: "../outside/x.log", wantErr: ErrEscapes},
		{name: "absolute", rel: "/etc/x.log", wantErr: ErrEscapes},
		{name: "empty", rel: "", wantErr: ErrEscapes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs, outside := tree(t, nil)
			if tc.setup != nil {
				tc.setup(t, logs, outside)
			}
			f, err := OpenLog(logs, tc.rel, 0o640)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("OpenLog(%q): %v, want %v", tc.rel, err, tc.wantErr)
				}
				if ents, _ := os.ReadDir(outside); len(ents) > 0 && tc.name != "hard link" {
					t.Errorf("OpenLog(%q) created %s outside", tc.rel, ents[0].Name())
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenLog(%q): %v", tc.rel, err)
			}
			defer f.Close()
			if _, err := f.WriteString("new\n"); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(logs, tc.rel))
			if err != nil {
				t.Fatal(err)
			}
			if s := string(data); s != "new\n" && s != "old\nnew\n" {
				t.Errorf("log holds %q", s)
			}
		})
	}
}

func TestMkdirAll(t *testing.T) {
	tests := []struct {
		name    string
		rel     string
		setup   func(t *testing.T, logs, outside string)
		wantErr error
	}{
		{name: "new", rel: "a/b/c"},
		{name: "existing", rel: "a", setup: func(t *testing.T, logs, _ string) { must(t, os.Mkdir(filepath.Join(logs, "a"), 0o755)) }},
		{name: "symlink component", rel: "a/b", wantErr: ErrSymlink, setup: func(t *testing.T, logs, outside string) {
			must(t, os.Symlink(outside, filepath.Join(logs, "a")))
		}},
		{name: "symlink last", rel: "a", wantErr: ErrSymlink, setup: func(t *testing.T, logs, outside string) {
			must(t, os.Symlink(outside, filepath.Join(logs, "a")))
		}},
		{name: "file in the way", rel: "a/b", wantErr: syscall.ENOTDIR, setup: func(t *testing.T, logs, _ string) {
			must(t, os.WriteFile(filepath.Join(logs, "a"), nil, 0o644))
		}},
		{name: "escape", rel: "a/../../outside/x", wantErr: ErrEscapes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs, outside := tree(t, nil)
			if tc.setup != nil {
				tc.setup(t, logs, outside)
			}
			err := MkdirAll(logs, tc.rel, 0o755)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("MkdirAll(%q): %v, want %v", tc.rel, err, tc.wantErr)
				}
				if ents, _ := os.ReadDir(outside); len(ents) > 0 {
					t.Errorf("MkdirAll(%q) created %s outside", tc.rel, ents[0].Name())
				}
				return
			}
			if err != nil {
				t.Fatalf("MkdirAll(%q): %v", tc.rel, err)
			}
			if st, err := os.Lstat(filepath.Join(logs, tc.rel)); err != nil || !st.IsDir() {
				t.Errorf("%s is not a directory: %v", tc.rel, err)
			}
		})
	}
}

// TestNoFollowFallback covers the path taken on kernels without openat2.
func TestNoFollowFallback(t *testing.T) {
	tests := []struct {
		name    string
		rel     string
		setup   func(t *testing.T, logs, outside string)
		wantErr error
	}{
		{name: "plain", rel: "a/f", setup: func(t *testing.T, logs, _ string) {
			must(t, os.MkdirAll(filepath.Join(logs, "a"), 0o755))
		}},
		{name: "symlink dir", rel: "a/f", wantErr: ErrSymlink, setup: func(t *testing.T, logs, outside string) {
			must(t, os.Symlink(outside, filepath.Join(logs, "a")))
		}},
		{name: "symlink file", rel: "f", wantErr: ErrSymlink, setup: func(t *testing.T, logs, outside string) {
			must(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(logs, "f")))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs, outside := tree(t, nil)
			tc.setup(t, logs, outside)
			root, err := openRoot(logs)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(root)
			fd, err := openAtNoFollow(root, tc.rel, unix.O_WRONLY|unix.O_CREAT, 0o640)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("openAtNoFollow(%q): %v, want %v", tc.rel, err, tc.wantErr)
				}
				if ents, _ := os.ReadDir(outside); len(ents) > 0 {
					t.Errorf("created %s outside", ents[0].Name())
				}
				return
			}
			if err != nil {
				t.Fatalf("openAtNoFollow(%q): %v", tc.rel, err)
			}
			unix.Close(fd)
		})
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		rel     string
		setup   func(t *testing.T, root, outside string)
		want    string // relative to root; "" with wantErr
		wantErr error
	}{
		{name: "file", rel: "data/a.txt", want: "data/a.txt"},
		{name: "directory", rel: "data", want: "data"},
		{name: "unclean", rel: "./data//a.txt", want: "data/a.txt"},
		{name: "relative symlink inside", rel: "link/a.txt", want: "data/a.txt", setup: func(t *testing.T, root, _ string) {
			must(t, os.Symlink("data", filepath.Join(root, "link")))
		}},
		{name: "symlink to a sibling inside", rel: "data/b.txt", want: "data/a.txt", setup: func(t *testing.T, root, _ string) {
			must(t, os.Symlink("../data/a.txt", filepath.Join(root, "data/b.txt")))
		}},
		{name: "absolute symlink", rel: "abs", wantErr: ErrEscapes, setup: func(t *testing.T, root, outside string) {
			must(t, os.Symlink(outside, filepath.Join(root, "abs")))
		}},
		{name: "relative symlink out", rel: "up/x", wantErr: ErrEscapes, setup: func(t *testing.T, root, _ string) {
			must(t, os.Symlink("../outside", filepath.Join(root, "up")))
		}},
		{name: "dot dot", rel: "../outside", wantErr: ErrEscapes},
		{name: "dot dot inside then out", rel: "data/../../outside", wantErr: ErrEscapes},
		{name: "absolute", rel: "/etc", wantErr: ErrEscapes},
		{name: "missing", rel: "data/nope", wantErr: os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := tree(t, nil)
			must(t, os.MkdirAll(filepath.Join(root, "data"), 0o755))
			must(t, os.WriteFile(filepath.Join(root, "data/a.txt"), []byte("a"), 0o644))
			must(t, os.WriteFile(filepath.Join(outside, "x"), []byte("x"), 0o644))
			if tc.setup != nil {
				tc.setup(t, root, outside)
			}
			got, err := Resolve(root, tc.rel)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve(%q) = %q, %v; want %v", tc.rel, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tc.rel, err)
			}
			if want := filepath.Join(root, tc.want); got != want {
				t.Errorf("Resolve(%q) = %q, want %q", tc.rel, got, want)
			}
		})
	}
}
