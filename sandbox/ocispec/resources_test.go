package ocispec

import (
	"errors"
	"math"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestResourcesValidation(t *testing.T) {
	huge := func(size string) []*runtimeapi.HugepageLimit {
		return []*runtimeapi.HugepageLimit{{PageSize: size, Limit: 0}}
	}
	tests := []struct {
		name    string
		r       *runtimeapi.LinuxContainerResources
		wantErr string // "" accepts
	}{
		{"kubelet's usual", &runtimeapi.LinuxContainerResources{CpuShares: 102, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20,
			OomScoreAdj: 999, HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}}}, ""},
		{"unset", &runtimeapi.LinuxContainerResources{}, ""},
		{"no quota", &runtimeapi.LinuxContainerResources{CpuQuota: -1}, ""},
		{"max shares", &runtimeapi.LinuxContainerResources{CpuShares: 262144}, ""},
		{"64KB pages", &runtimeapi.LinuxContainerResources{HugepageLimits: huge("64KB")}, ""},
		{"negative shares", &runtimeapi.LinuxContainerResources{CpuShares: -1}, "linux.resources.cpu_shares"},
		{"huge shares", &runtimeapi.LinuxContainerResources{CpuShares: math.MaxInt64}, "linux.resources.cpu_shares"},
		{"negative quota", &runtimeapi.LinuxContainerResources{CpuQuota: -2}, "linux.resources.cpu_quota"},
		{"MinInt64 quota", &runtimeapi.LinuxContainerResources{CpuQuota: math.MinInt64}, "linux.resources.cpu_quota"},
		{"tiny quota", &runtimeapi.LinuxContainerResources{CpuQuota: 999}, "linux.resources.cpu_quota"},
		{"MaxInt64 quota", &runtimeapi.LinuxContainerResources{CpuQuota: math.MaxInt64}, "linux.resources.cpu_quota"},
		{"negative period", &runtimeapi.LinuxContainerResources{CpuPeriod: -1}, "linux.resources.cpu_period"},
		{"tiny period", &runtimeapi.LinuxContainerResources{CpuPeriod: 999}, "linux.resources.cpu_period"},
		{"long period", &runtimeapi.LinuxContainerResources{CpuPeriod: 1000001}, "linux.resources.cpu_period"},
		{"oom_score_adj too high", &runtimeapi.LinuxContainerResources{OomScoreAdj: 1001}, "linux.resources.oom_score_adj"},
		{"negative memory", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -5}, "linux.resources.memory_limit_in_bytes"},
		{"negative swap", &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 20, MemorySwapLimitInBytes: -2}, "linux.resources.memory_swap_limit_in_bytes"},
		{"page size path", &runtimeapi.LinuxContainerResources{HugepageLimits: huge("../../x")}, "hugepage_limits[0].page_size"},
		{"page size empty", &runtimeapi.LinuxContainerResources{HugepageLimits: huge("")}, "hugepage_limits[0].page_size"},
		{"page size unit", &runtimeapi.LinuxContainerResources{HugepageLimits: huge("2M")}, "hugepage_limits[0].page_size"},
		{"page size newline", &runtimeapi.LinuxContainerResources{HugepageLimits: huge("2MB\n")}, "hugepage_limits[0].page_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Both with and without a hugetlb controller: the size is
			// checked either way.
			for _, hugetlb := range []bool{true, false} {
				_, err := Resources(tc.r, hugetlb)
				if tc.wantErr == "" {
					if err != nil {
						t.Fatalf("hugetlb %v: %v", hugetlb, err)
					}
					continue
				}
				if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("hugetlb %v: err %v, want InvalidArgument naming %q", hugetlb, err, tc.wantErr)
				}
			}
		})
	}
}
