package container

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/state"
)

func TestMergeResources(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	i64 := func(v int64) *int64 { return &v }
	created := &state.Resources{CPUPeriod: 100000, CPUQuota: 20000, CPUShares: 512, MemoryLimit: 128 << 20, MemorySwapLimit: 128 << 20, OOMScoreAdj: 900}
	tests := []struct {
		name string
		have *state.Resources
		res  *specs.LinuxResources
		want *state.Resources
	}{
		{"nothing to merge", created, nil, created},
		{
			"update replaces what it sets, keeps the rest",
			created,
			&specs.LinuxResources{
				CPU:    &specs.LinuxCPU{Quota: i64(50000)},
				Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)},
			},
			&state.Resources{CPUPeriod: 100000, CPUQuota: 50000, CPUShares: 512, MemoryLimit: 64 << 20, MemorySwapLimit: 64 << 20, OOMScoreAdj: 900},
		},
		{
			"from nothing (a record from an older crib)",
			nil,
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2), Cpus: "0-1"}, Unified: map[string]string{"memory.high": "1G"}},
			&state.Resources{CPUShares: 2, CpusetCpus: "0-1", Unified: map[string]string{"memory.high": "1G"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeResources(tc.have, tc.res); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
