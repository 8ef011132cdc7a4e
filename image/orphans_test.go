package image

import (
	"slices"
	"testing"
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
