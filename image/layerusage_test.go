package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
)

func TestTreeUsage(t *testing.T) {
	tests := []struct {
		name       string
		make       func(t *testing.T, dir string)
		minBytes   uint64
		maxBytes   uint64
		wantInodes uint64
	}{
		{name: "empty", make: func(*testing.T, string) {}, maxBytes: 64 << 10, wantInodes: 1},
		{
			name: "one file of 1 MiB",
			make: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "f"), 1<<20) },
			// Allocated blocks: at least the data, plus the directory's.
			minBytes: 1 << 20, maxBytes: 1<<20 + 64<<10, wantInodes: 2,
		},
		{
			name: "a hard link counts once",
			make: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "f"), 1<<20)
				if err := os.Link(filepath.Join(dir, "f"), filepath.Join(dir, "g")); err != nil {
					t.Fatal(err)
				}
			},
			minBytes: 1 << 20, maxBytes: 1<<20 + 64<<10, wantInodes: 2,
		},
		{
			name: "a sparse file counts its blocks, not its length",
			make: func(t *testing.T, dir string) {
				f, err := os.Create(filepath.Join(dir, "sparse"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := f.Truncate(1 << 30); err != nil {
					t.Fatal(err)
				}
			},
			maxBytes: 64 << 10, wantInodes: 2,
		},
		{
			name: "nested directories",
			make: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(dir, "a", "b", "f"), 8192)
			},
			minBytes: 8192, maxBytes: 8192 + 64<<10, wantInodes: 4,
		},
		{
			name: "a symbolic link out of the tree is not followed",
			make: func(t *testing.T, dir string) {
				big := t.TempDir()
				writeFile(t, filepath.Join(big, "f"), 4<<20)
				if err := os.Symlink(big, filepath.Join(dir, "out")); err != nil {
					t.Fatal(err)
				}
			},
			maxBytes: 64 << 10, wantInodes: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.make(t, dir)
			bytes, inodes, err := treeUsage(dir)
			if err != nil {
				t.Fatal(err)
			}
			if bytes < tt.minBytes || bytes > tt.maxBytes {
				t.Errorf("bytes = %d, want in [%d, %d]", bytes, tt.minBytes, tt.maxBytes)
			}
			if inodes != tt.wantInodes {
				t.Errorf("inodes = %d, want %d", inodes, tt.wantInodes)
			}
		})
	}
	if _, _, err := treeUsage(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: err = %v, want not exist", err)
	}
}

func writeFile(t testing.TB, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTreeUsage walks an upper directory of 10,000 small files in
// 100 directories: the cost of one background refresh of a busy layer.
func BenchmarkTreeUsage(b *testing.B) {
	dir := b.TempDir()
	for d := range 100 {
		sub := filepath.Join(dir, fmt.Sprint(d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			writeFile(b, filepath.Join(sub, fmt.Sprint(f)), 100)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, inodes, err := treeUsage(dir); err != nil || inodes != 10101 {
			b.Fatalf("inodes %d, err %v", inodes, err)
		}
	}
}

// fakeMeasure counts measurements and answers from a table.
type fakeMeasure struct {
	mu    sync.Mutex
	calls map[string]int
	bytes map[string]uint64
	err   map[string]error
	block chan struct{} // if set, each measurement waits for it
	now   *time.Time    // the test's clock
}

func (f *fakeMeasure) measure(id string) (Usage, error) {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[id]++
	if err := f.err[id]; err != nil {
		return Usage{}, err
	}
	return Usage{Mountpoint: "/graph", Timestamp: *f.now, UsedBytes: f.bytes[id], Inodes: 1}, nil
}

func (f *fakeMeasure) count(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}

func newTestLayerUsage(f *fakeMeasure, now *time.Time) *layerUsage {
	u := newLayerUsage(f.measure, logrus.New())
	u.now = func() time.Time { return *now }
	return u
}

func TestLayerUsageCache(t *testing.T) {
	var now time.Time
	tests := []struct {
		name string
		run  func(t *testing.T, u *layerUsage, f *fakeMeasure)
	}{
		{
			name: "a first request has nothing and queues a walk",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				if _, ok := u.get("a"); ok {
					t.Error("first get has a measurement")
				}
				u.walkers.Wait()
				got, ok := u.get("a")
				if !ok || got.UsedBytes != 100 || f.count("a") != 1 {
					t.Errorf("after the walk: %+v, %v, %d walks", got, ok, f.count("a"))
				}
			},
		},
		{
			name: "a fresh measurement is served without a walk",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				u.add("a")
				u.walkers.Wait()
				for range 10 {
					u.get("a")
				}
				u.walkers.Wait()
				if n := f.count("a"); n != 1 {
					t.Errorf("%d walks, want 1", n)
				}
			},
		},
		{
			name: "a stale measurement is served and refreshed",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				u.add("a")
				u.walkers.Wait()
				first, _ := u.get("a")
				f.mu.Lock()
				f.bytes["a"] = 200
				f.mu.Unlock()
				now = now.Add(LayerUsageRefresh)
				if got, ok := u.get("a"); !ok || got.UsedBytes != 100 || !got.Timestamp.Equal(first.Timestamp) {
					t.Errorf("stale get = %+v, %v; want the old measurement", got, ok)
				}
				u.walkers.Wait()
				if got, _ := u.get("a"); got.UsedBytes != 200 || f.count("a") != 2 {
					t.Errorf("after refresh: %+v, %d walks", got, f.count("a"))
				}
			},
		},
		{
			name: "requests during a walk queue it once",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				f.block = make(chan struct{})
				for range 5 {
					u.get("a")
				}
				close(f.block)
				u.walkers.Wait()
				if n := f.count("a"); n != 1 {
					t.Errorf("%d walks, want 1", n)
				}
			},
		},
		{
			name: "a layer forgotten during its walk is not brought back",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				f.block = make(chan struct{})
				u.add("a")
				u.forget("a")
				close(f.block)
				u.walkers.Wait()
				u.mu.Lock()
				_, kept := u.entries["a"]
				u.mu.Unlock()
				if kept {
					t.Error("forgotten layer has an entry")
				}
			},
		},
		{
			name: "a layer the store no longer has is dropped",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				f.err["a"] = fmt.Errorf("writable layer of container a: %w", storage.ErrContainerUnknown)
				u.get("a")
				u.walkers.Wait()
				u.mu.Lock()
				n := len(u.entries)
				u.mu.Unlock()
				if n != 0 {
					t.Errorf("%d entries, want 0", n)
				}
			},
		},
		{
			name: "another error keeps the last measurement",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				u.add("a")
				u.walkers.Wait()
				f.err["a"] = errors.New("EIO")
				now = now.Add(LayerUsageRefresh)
				u.get("a")
				u.walkers.Wait()
				if got, ok := u.get("a"); !ok || got.UsedBytes != 100 {
					t.Errorf("after a failed walk: %+v, %v", got, ok)
				}
			},
		},
		{
			name: "closed, no walk starts",
			run: func(t *testing.T, u *layerUsage, f *fakeMeasure) {
				u.close()
				u.get("a")
				u.walkers.Wait()
				if n := f.count("a"); n != 0 {
					t.Errorf("%d walks after close", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = time.Unix(1e9, 0)
			f := &fakeMeasure{calls: map[string]int{}, bytes: map[string]uint64{"a": 100}, err: map[string]error{}, now: &now}
			u := newTestLayerUsage(f, &now)
			defer u.close()
			tt.run(t, u, f)
		})
	}
}

func TestFsCapacity(t *testing.T) {
	c, err := fsCapacity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.CapacityBytes == 0 || c.AvailableBytes > c.CapacityBytes || c.InodesFree > c.Inodes {
		t.Errorf("fsCapacity = %+v", c)
	}
	if _, err := fsCapacity(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("fsCapacity of a missing path succeeded")
	}
}

// BenchmarkLayerUsageGet is what writable layers add to a
// ListContainerStats of 50 containers: 50 cache lookups (measurements
// fresh, as between kubelet's polls).
func BenchmarkLayerUsageGet(b *testing.B) {
	now := time.Unix(1e9, 0)
	f := &fakeMeasure{calls: map[string]int{}, bytes: map[string]uint64{}, err: map[string]error{}, now: &now}
	u := newTestLayerUsage(f, &now)
	defer u.close()
	ids := make([]string, 50)
	for i := range ids {
		ids[i] = fmt.Sprintf("%064d", i)
		u.add(ids[i])
	}
	u.walkers.Wait()
	for b.Loop() {
		for _, id := range ids {
			if _, ok := u.get(id); !ok {
				b.Fatal("not measured")
			}
		}
	}
}

// TestMeasureLayer: on a real overlay store, a container's measurement
// counts what is written to its upper directory, and an unknown container
// is an error the cache takes for a layer gone.
func TestMeasureLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (overlay store)")
	}
	s := newLocalService(t)
	if _, err := s.store.CreateContainer("c1", nil, "", "", "", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.store.DeleteContainer("c1") })
	before, err := s.measureLayer("c1")
	if err != nil {
		t.Fatal(err)
	}
	if before.Mountpoint != s.opts.GraphRoot || before.Inodes == 0 || before.Fs.CapacityBytes == 0 {
		t.Errorf("empty layer: %+v", before)
	}
	c, err := s.store.Container("c1")
	if err != nil {
		t.Fatal(err)
	}
	driver, err := s.store.GraphDriver()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := driver.Metadata(c.LayerID)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(meta["UpperDir"], "written"), 1<<20)
	after, err := s.measureLayer("c1")
	if err != nil {
		t.Fatal(err)
	}
	if after.UsedBytes < before.UsedBytes+1<<20 || after.Inodes != before.Inodes+1 {
		t.Errorf("after writing 1 MiB: %+v, before %+v", after, before)
	}
	if _, err := s.measureLayer("unknown"); !s.layerUsage.gone(err) {
		t.Errorf("unknown container: err %v, want one the cache takes for gone", err)
	}
}
