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
	dir, err := os.MkdirTemp("", "crib-orphans-")
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	s, err := New(Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = os.RemoveAll(dir)
	})
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
