package image

import (
	"errors"
	"fmt"
	"testing"

	"go.podman.io/storage"
)

// TestRootfsGone: every way the store says a container or its layer is
// gone makes RemoveRootfs succeed (a removal cut short by a crash), and
// nothing else does.
func TestRootfsGone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{storage.ErrContainerUnknown, true},
		{storage.ErrNotAContainer, true},
		{storage.ErrLayerUnknown, true},
		{fmt.Errorf("delete: %w", storage.ErrNotAContainer), true},
		{storage.ErrLayerUsedByContainer, false},
		{errors.New("device or resource busy"), false},
	} {
		if got := rootfsGone(tc.err); got != tc.want {
			t.Errorf("rootfsGone(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
