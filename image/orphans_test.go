package image

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestOrphanLayers(t *testing.T) {
	// base ← mid ← top (an image's), base ← other ← leaf (nothing's),
	// lone (nothing's), ctr ← on top of top (a container's).
	parent := map[string]string{
		"base": "", "mid": "base", "top": "mid", "ctr": "top",
		"other": "base", "leaf": "other", "lone": "",
	}
	tests := []struct {
		name  string
		roots []string
		want  []string
	}{
		{"image and container kept", []string{"top", "ctr"}, []string{"leaf", "other", "lone"}},
		{"container alone keeps its image's chain", []string{"ctr"}, []string{"leaf", "other", "lone"}},
		{"nothing referenced: children first", nil, []string{"ctr", "leaf", "top", "mid", "other", "base", "lone"}},
		{"unknown root ignored", []string{"gone", "leaf"}, []string{"ctr", "top", "mid", "lone"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := orphanLayers(parent, tc.roots)
			if !slices.Equal(got, tc.want) {
				t.Errorf("orphanLayers(%v) = %v, want %v", tc.roots, got, tc.want)
			}
		})
	}
}

func TestLayerGateSweepsWhenIdle(t *testing.T) {
	var g layerGate
	sweeps := 0
	sweep := func() { sweeps++ }
	g.enter()
	g.enter()
	g.leave(true, sweep) // one still in flight: no sweep yet
	if sweeps != 0 {
		t.Fatalf("swept with a pull in flight")
	}
	g.leave(false, sweep) // last one out sweeps for the failure
	if sweeps != 1 {
		t.Fatalf("sweeps = %d after the last pull left, want 1", sweeps)
	}
	g.enter()
	g.leave(false, sweep)
	if sweeps != 1 {
		t.Fatalf("swept after a success")
	}
}

// TestSweepWaitsForImport: while an import holds the store's layer lock
// (as `cribd import` in another process does), a sweep removes nothing;
// once it ends, the orphan goes.
func TestSweepWaitsForImport(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (overlay store)")
	}
	s := newLocalService(t)
	orphan, err := s.store.CreateLayer("", "", nil, "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	exists := func() bool { _, err := s.store.Layer(orphan.ID); return err == nil }

	release, err := s.holdForImport()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveOrphanLayers(); err != nil {
		t.Fatalf("RemoveOrphanLayers during an import: %v", err)
	}
	if !exists() {
		t.Fatal("the sweep removed a layer while an import held the store")
	}
	// A failed pull's sweep is put off, and asked for again.
	s.layers.enter()
	s.layers.leave(true, s.sweepAfterFailure)
	if !exists() || !s.layers.dirty {
		t.Fatalf("sweep after a failed pull during an import: layer there %v, sweep still wanted %v", exists(), s.layers.dirty)
	}
	release()
	if err := s.RemoveOrphanLayers(); err != nil {
		t.Fatal(err)
	}
	if exists() {
		t.Error("the orphan is still there after the import ended")
	}
}

// newLocalService opens a Service on a store in a new temp dir, whose graph
// root an older crib made 0700.
func newLocalService(t *testing.T) *Service {
	t.Helper()
	dir, err := os.MkdirTemp("", "crib-store-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o700); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	s, err := New(Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStoreRootsSearchable: the store's roots, new or left 0700 by an older
// crib, can be searched by all, so a pod's root in its own user namespace
// reaches its root filesystem below them.
func TestStoreRootsSearchable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (overlay store)")
	}
	s := newLocalService(t)
	for _, d := range []string{s.opts.GraphRoot, s.opts.RunRoot} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o711 {
			t.Errorf("store root %s: %v %v, want mode 0711", d, st.Mode(), err)
		}
	}
}
