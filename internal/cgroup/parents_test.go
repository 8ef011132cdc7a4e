package cgroup

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
)

// fakeFS is a throwaway cgroup root: plain directories stand for the
// hierarchies (rmdir of a non-empty one fails as a busy cgroup does).
type fakeFS struct {
	t           *testing.T
	hierarchies []string
	ledger      string
}

func newFakeFS(t *testing.T, names ...string) *fakeFS {
	root := t.TempDir()
	f := &fakeFS{t: t, ledger: filepath.Join(root, "run", "cgroups.json")}
	for _, n := range names {
		h := filepath.Join(root, "sys", n)
		if err := os.MkdirAll(h, 0o755); err != nil {
			t.Fatal(err)
		}
		f.hierarchies = append(f.hierarchies, h)
	}
	return f
}

func (f *fakeFS) parents(units Units) *Parents {
	f.t.Helper()
	p, err := NewParents(ParentsOptions{File: f.ledger, Hierarchies: f.hierarchies, Units: units})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// mkdir makes dir (below the root) in every hierarchy, as kubelet or a
// container's cgroup would.
func (f *fakeFS) mkdir(dir string) {
	f.t.Helper()
	for _, h := range f.hierarchies {
		if err := os.MkdirAll(filepath.Join(h, dir), 0o755); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fakeFS) rmdir(dir string) {
	f.t.Helper()
	for _, h := range f.hierarchies {
		if err := os.Remove(filepath.Join(h, dir)); err != nil {
			f.t.Fatal(err)
		}
	}
}

// exists reports in how many hierarchies dir exists.
func (f *fakeFS) exists(dir string) int {
	n := 0
	for _, h := range f.hierarchies {
		if _, err := os.Stat(filepath.Join(h, dir)); err == nil {
			n++
		}
	}
	return n
}

func (f *fakeFS) want(dir string, n int) {
	f.t.Helper()
	if got := f.exists(dir); got != n {
		f.t.Errorf("%s exists in %d hierarchies, want %d", dir, got, n)
	}
}

func TestParentsCgroupfs(t *testing.T) {
	ctx := context.Background()
	type step struct {
		op   string // acquire, release, use, sweep, restart, mkdir, rmdir
		pod  string
		dir  string // parent for acquire/release/use; a directory for mkdir/rmdir
		want map[string]int
	}
	for _, tc := range []struct {
		name     string
		existing []string
		steps    []step
	}{
		{
			name: "kubelet-style parent crib made goes with the pod, leaf first",
			steps: []step{
				{op: "acquire", pod: "a", dir: "/kubepods/besteffort/pod1",
					want: map[string]int{"/kubepods": 2, "/kubepods/besteffort/pod1": 2}},
				{op: "mkdir", dir: "/kubepods/besteffort/pod1/a"},
				// The leaf is still there: the parents are busy, not an error.
				{op: "release", pod: "a", dir: "/kubepods/besteffort/pod1", want: map[string]int{"/kubepods/besteffort/pod1": 2}},
				{op: "rmdir", dir: "/kubepods/besteffort/pod1/a"},
				{op: "release", pod: "a", dir: "/kubepods/besteffort/pod1",
					want: map[string]int{"/kubepods": 0, "/kubepods/besteffort": 0, "/kubepods/besteffort/pod1": 0}},
			},
		},
		{
			name:     "ancestors crib did not make stay",
			existing: []string{"/kubepods/besteffort"},
			steps: []step{
				{op: "acquire", pod: "a", dir: "/kubepods/besteffort/pod1", want: map[string]int{"/kubepods/besteffort/pod1": 2}},
				{op: "release", pod: "a", dir: "/kubepods/besteffort/pod1",
					want: map[string]int{"/kubepods": 2, "/kubepods/besteffort": 2, "/kubepods/besteffort/pod1": 0}},
			},
		},
		{
			name:     "a parent that exists is not crib's",
			existing: []string{"/crib"},
			steps: []step{
				{op: "acquire", pod: "a", dir: "/crib"},
				{op: "release", pod: "a", dir: "/crib", want: map[string]int{"/crib": 2}},
			},
		},
		{
			name: "a shared parent goes with its last pod, whichever made it",
			steps: []step{
				{op: "acquire", pod: "a", dir: "/crib"},
				{op: "acquire", pod: "b", dir: "/crib"},
				// b has no cgroup yet (it is being created): /crib is
				// empty but in use.
				{op: "release", pod: "a", dir: "/crib", want: map[string]int{"/crib": 2}},
				{op: "release", pod: "b", dir: "/crib", want: map[string]int{"/crib": 0}},
			},
		},
		{
			name: "a pod below another pod's parent keeps it",
			steps: []step{
				{op: "acquire", pod: "a", dir: "/crib"},
				{op: "acquire", pod: "b", dir: "/crib/nested"},
				{op: "release", pod: "a", dir: "/crib", want: map[string]int{"/crib": 2, "/crib/nested": 2}},
				{op: "release", pod: "b", dir: "/crib/nested", want: map[string]int{"/crib": 0}},
			},
		},
		{
			name: "busy with something not crib's: kept, removed by a later sweep",
			steps: []step{
				{op: "acquire", pod: "a", dir: "/crib"},
				{op: "mkdir", dir: "/crib/other"},
				{op: "release", pod: "a", dir: "/crib", want: map[string]int{"/crib": 2}},
				{op: "rmdir", dir: "/crib/other"},
				{op: "sweep", want: map[string]int{"/crib": 0}},
			},
		},
		{
			name: "the ledger survives a restart: a sweep removes what no pod uses",
			steps: []step{
				{op: "acquire", pod: "a", dir: "/kubepods/pod1"},
				{op: "acquire", pod: "b", dir: "/crib"},
				{op: "restart"},
				{op: "use", pod: "b", dir: "/crib"},
				{op: "sweep", want: map[string]int{"/kubepods": 0, "/crib": 2}},
				{op: "release", pod: "b", dir: "/crib", want: map[string]int{"/crib": 0}},
			},
		},
		{
			name: "made in the hierarchies where it was missing only",
			steps: []step{
				{op: "mkdir", dir: "/crib"},
				{op: "rmdir-one", dir: "/crib"},
				{op: "acquire", pod: "a", dir: "/crib", want: map[string]int{"/crib": 2}},
				{op: "release", pod: "a", dir: "/crib", want: map[string]int{"/crib": 1}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFS(t, "cpu", "memory")
			for _, d := range tc.existing {
				f.mkdir(d)
			}
			p := f.parents(nil)
			for i, s := range tc.steps {
				var err error
				switch s.op {
				case "acquire":
					err = p.Acquire(ctx, s.pod, Cgroupfs, s.dir)
				case "release":
					err = p.Release(ctx, s.pod, Cgroupfs, s.dir)
				case "use":
					err = p.Use(s.pod, Cgroupfs, s.dir)
				case "sweep":
					err = p.Sweep(ctx)
				case "restart":
					p = f.parents(nil)
				case "mkdir":
					f.mkdir(s.dir)
				case "rmdir":
					f.rmdir(s.dir)
				case "rmdir-one":
					if err := os.Remove(filepath.Join(f.hierarchies[0], s.dir)); err != nil {
						t.Fatal(err)
					}
				}
				if err != nil {
					t.Fatalf("step %d %s %s: %v", i, s.op, s.dir, err)
				}
				for d, n := range s.want {
					if got := f.exists(d); got != n {
						t.Errorf("after step %d (%s %s %s): %s exists in %d hierarchies, want %d", i, s.op, s.pod, s.dir, d, got, n)
					}
				}
			}
		})
	}
}

func TestParentsLedgerEmptyAfterRelease(t *testing.T) {
	ctx := context.Background()
	f := newFakeFS(t, "unified")
	p := f.parents(nil)
	if err := p.Acquire(ctx, "a", Cgroupfs, "/a/b"); err != nil {
		t.Fatal(err)
	}
	var lf ledgerFile
	if err := readLedger(f.ledger, &lf); err != nil || len(lf.Dirs) != 2 {
		t.Fatalf("ledger after acquire: %+v, %v; want /a and /a/b", lf, err)
	}
	if err := p.Release(ctx, "a", Cgroupfs, "/a/b"); err != nil {
		t.Fatal(err)
	}
	lf = ledgerFile{}
	if err := readLedger(f.ledger, &lf); err != nil || len(lf.Dirs) != 0 {
		t.Fatalf("ledger after release: %+v, %v; want empty", lf, err)
	}
}

// fakeUnits is systemd: active slices, with their cgroup directories in
// the fake hierarchies.
type fakeUnits struct {
	f       *fakeFS
	active  map[string]bool
	started []string
	stopped []string
}

func (u *fakeUnits) Active(_ context.Context, unit string) (bool, error) { return u.active[unit], nil }

func (u *fakeUnits) StartSlice(_ context.Context, slice string) error {
	u.started = append(u.started, slice)
	for s := slice; s != ""; s = parentSlice(s) {
		u.active[s] = true
		dir, _ := SliceDir(s)
		u.f.mkdir(dir)
	}
	return nil
}

func (u *fakeUnits) Stop(_ context.Context, unit string) error {
	u.stopped = append(u.stopped, unit)
	delete(u.active, unit)
	if dir, err := SliceDir(unit); err == nil {
		for _, h := range u.f.hierarchies {
			_ = os.Remove(filepath.Join(h, dir))
		}
	}
	return nil
}

func TestParentsSystemd(t *testing.T) {
	ctx := context.Background()
	f := newFakeFS(t, "unified")
	f.mkdir("/kubepods.slice")
	u := &fakeUnits{f: f, active: map[string]bool{"kubepods.slice": true}}
	p := f.parents(u)
	const slice = "kubepods-besteffort-pod1.slice"
	podDir := "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice"
	for _, pod := range []string{"a", "b"} {
		if err := p.Acquire(ctx, pod, Systemd, slice); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(u.started, []string{slice}) {
		t.Errorf("started %v, want only %s", u.started, slice)
	}
	// Pod b's scope is still in the slice: a's release stops nothing.
	scope := path.Join(podDir, "crib-b.scope")
	f.mkdir(scope)
	if err := p.Release(ctx, "a", Systemd, slice); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(ctx, "b", Systemd, slice); err != nil {
		t.Fatal(err)
	}
	if len(u.stopped) != 0 {
		t.Errorf("stopped %v while a scope was in the slice", u.stopped)
	}
	f.rmdir(scope)
	if err := p.Release(ctx, "b", Systemd, slice); err != nil {
		t.Fatal(err)
	}
	if want := []string{slice, "kubepods-besteffort.slice"}; !slices.Equal(u.stopped, want) {
		t.Errorf("stopped %v, want %v (deepest first, and never kubepods.slice, which crib did not start)", u.stopped, want)
	}
	f.want("/kubepods.slice", 1)
	f.want(podDir, 0)
	// A slice kubelet made (active before the pod) is never stopped.
	u.stopped = nil
	u.StartSlice(ctx, "kubepods-burstable-pod2.slice")
	if err := p.Acquire(ctx, "c", Systemd, "kubepods-burstable-pod2.slice"); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(ctx, "c", Systemd, "kubepods-burstable-pod2.slice"); err != nil {
		t.Fatal(err)
	}
	if len(u.stopped) != 0 {
		t.Errorf("stopped %v, slices crib did not start", u.stopped)
	}
}

func readLedger(file string, lf *ledgerFile) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, lf)
}
