package network

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/api/errdefs"
)

const (
	confA = `{"cniVersion":"1.0.0","name":"net-a","type":"bridge","bridge":"crib-ta0"}`
	confB = `{"cniVersion":"1.0.0","name":"net-b","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}`
	confC = `{"cniVersion":"1.0.0","name":"net-c","type":"ptp"}`
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string
		wantNet  string // network name, or "" for an error
		plugins  int
		wantErrs []string // substrings of the error, with DIR for the dir
	}{
		{name: "empty dir", wantErrs: []string{"no network config found in DIR"}},
		{name: "no config extension", files: map[string]string{"00-readme.txt": "hi", "10-x.conflist.bak": confB},
			wantErrs: []string{"no network config found in DIR"}},
		{name: "conflist", files: map[string]string{"10-b.conflist": confB}, wantNet: "net-b", plugins: 2},
		{name: "conf as one-plugin list", files: map[string]string{"10-a.conf": confA}, wantNet: "net-a", plugins: 1},
		{name: "json as one-plugin list", files: map[string]string{"10-c.json": confC}, wantNet: "net-c", plugins: 1},
		{name: "first by name wins", files: map[string]string{
			"20-b.conflist": confB, "10-a.conf": confA, "30-c.json": confC,
		}, wantNet: "net-a", plugins: 1},
		{name: "conflist before conf when named first", files: map[string]string{
			"10-b.conflist": confB, "10-c.conf": confC,
		}, wantNet: "net-b", plugins: 2},
		{name: "dirs are skipped", files: map[string]string{
			"00-dir.conflist/x": "", "50-c.json": confC,
		}, wantNet: "net-c", plugins: 1},
		{name: "bad json first", files: map[string]string{"10-bad.conflist": "{not json", "20-b.conflist": confB},
			wantErrs: []string{"invalid network config DIR/10-bad.conflist", "error parsing configuration list: invalid character"}},
		{name: "list in a .conf", files: map[string]string{"10-x.conf": confB},
			wantErrs: []string{"invalid network config DIR/10-x.conf", "missing 'type'"}},
		{name: "list without plugins", files: map[string]string{"10-x.conflist": `{"cniVersion":"1.0.0","name":"x","plugins":[]}`},
			wantErrs: []string{"invalid network config DIR/10-x.conflist", "no plugins in list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				writeFile(t, filepath.Join(dir, name), data)
			}
			got := loadConfig(dir)
			if tc.wantNet == "" {
				if got.err == nil {
					t.Fatalf("loaded %s, want an error", got.file)
				}
				for _, want := range tc.wantErrs {
					if want = strings.ReplaceAll(want, "DIR", dir); !strings.Contains(got.err.Error(), want) {
						t.Errorf("error %q does not contain %q", got.err, want)
					}
				}
				return
			}
			if got.err != nil {
				t.Fatal(got.err)
			}
			if got.list.Name != tc.wantNet || len(got.list.Plugins) != tc.plugins {
				t.Fatalf("loaded %s: network %q with %d plugins, want %q with %d",
					got.file, got.list.Name, len(got.list.Plugins), tc.wantNet, tc.plugins)
			}
		})
	}
}

func testOptions(t *testing.T, confDir string) Options {
	t.Helper()
	return Options{ConfDir: confDir, BinDirs: []string{"/usr/lib/cni"}, CacheDir: filepath.Join(t.TempDir(), "cache")}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewCreatesConfDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d")
	m, err := New(testOptions(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("conf dir not created: %v", err)
	}
	if ok, msg := m.Ready(); ok || msg != "no network config found in "+dir {
		t.Fatalf("Ready() = %v, %q", ok, msg)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{ConfDir: "net.d", BinDirs: []string{"/bin"}, CacheDir: "/tmp/c"},
		{ConfDir: "/net.d", BinDirs: []string{"/bin"}},
		{ConfDir: "/net.d", CacheDir: "/tmp/c"},
	} {
		if _, err := New(o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("New(%+v): %v, want invalid argument", o, err)
		}
	}
}

func TestWatcherReloads(t *testing.T) {
	dir := t.TempDir()
	m, err := New(testOptions(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	notReady := func(substr string) func() bool {
		return func() bool { ok, msg := m.Ready(); return !ok && strings.Contains(msg, substr) }
	}
	ready := func(network string) func() bool {
		return func() bool {
			ok, _ := m.Ready()
			list, _ := m.current()
			return ok && list != nil && list.Name == network
		}
	}
	if ok, msg := m.Ready(); ok || msg != "no network config found in "+dir {
		t.Fatalf("empty dir: Ready() = %v, %q", ok, msg)
	}

	writeFile(t, filepath.Join(dir, "20-b.conflist"), confB)
	eventually(t, "net-b to load", ready("net-b"))

	// A file sorting first takes over, broken or not.
	bad := filepath.Join(dir, "10-bad.conflist")
	writeFile(t, bad, `{"cniVersion": "1.0.0", garbage`)
	eventually(t, "the parse error", notReady("invalid network config "+bad+": error parsing configuration list"))
	_, err = m.Setup(context.Background(), SetupRequest{SandboxID: "x", NetNSPath: "/proc/self/ns/net"})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Setup while not ready: %v, want failed precondition naming %s", err, bad)
	}

	// Fixed in place.
	writeFile(t, bad, `{"cniVersion":"1.0.0","name":"net-a","plugins":[{"type":"bridge"}]}`)
	eventually(t, "net-a to load", ready("net-a"))

	// Renamed away, then removed: back to the next file, then to nothing.
	if err := os.Rename(bad, bad+".disabled"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "net-b to load again", ready("net-b"))
	if err := os.Remove(filepath.Join(dir, "20-b.conflist")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "no config", notReady("no network config found in "+dir))

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
