//go:build integration && bench

package integration

import (
	"sort"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestBenchImagePull: PullImage of the busybox test image from the loopback
// registry, removed before each pull; p50 of 5. Reports, asserts nothing.
func TestBenchImagePull(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	ic := h.imageClient()
	ctx := ctx30(t)
	const name = "docker.io/library/busybox:latest"
	var took []time.Duration
	for i := 0; i < 6; i++ { // the first is a warm-up
		if _, err := ic.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: name}}); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		if _, err := ic.PullImage(ctx, pullReq(name)); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			took = append(took, time.Since(begin))
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("PullImage busybox (remove, then pull) p50 of %d: %s (all: %v)", len(took), took[len(took)/2], took)
}
