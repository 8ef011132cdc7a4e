package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestUpdateError(t *testing.T) {
	mem := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20}
	tests := []struct {
		name     string
		err      error
		r        *runtimeapi.LinuxContainerResources
		wantKind error // nil: unchanged
		want     string
	}{
		{"memory below usage", errors.New("update container c: unable to set memory limit to 1048576 (current usage: 9000000, peak usage: 9100000)"), mem,
			errdefs.ErrFailedPrecondition, "linux.resources.memory_limit_in_bytes 1048576"},
		{"EBUSY", fmt.Errorf("update: write memory.max: %w", unix.EBUSY), mem, errdefs.ErrFailedPrecondition, "linux.resources.memory_limit_in_bytes"},
		{"invalid", errdefs.InvalidArgument("update container c: write cpu.max: invalid argument"), &runtimeapi.LinuxContainerResources{CpuQuota: 5000},
			errdefs.ErrInvalidArgument, "linux.resources: the kernel refused"},
		{"other", errors.New("shim gone"), mem, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := updateError(tc.err, tc.r)
			if tc.wantKind == nil {
				if got != tc.err {
					t.Fatalf("updateError changed %v to %v", tc.err, got)
				}
				return
			}
			if !errors.Is(got, tc.wantKind) || !strings.HasPrefix(got.Error(), tc.want) {
				t.Fatalf("updateError: %v, want %v starting with %q", got, tc.wantKind, tc.want)
			}
		})
	}
}
