package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/cgstats"
)

func TestCRIStats(t *testing.T) {
	at := time.Unix(100, 0)
	ts := at.UnixNano()
	u := func(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }
	cpuPSI := &cgstats.Pressure{Some: cgstats.PressureData{TotalNanos: 2000, Avg10: 1.5}, Full: cgstats.PressureData{TotalNanos: 100}}
	tests := []struct {
		name       string
		sample     cgstats.Sample
		wantMemory *runtimeapi.MemoryUsage
		wantSwap   *runtimeapi.SwapUsage
		wantCPUPSI *runtimeapi.PsiStats
		wantIO     *runtimeapi.IoUsage
	}{
		{
			name:       "no limits, no PSI (cgroup v1)",
			sample:     cgstats.Sample{MemoryUsage: 100, WorkingSet: 80, RSS: 50, PageFaults: 7, MajorPageFaults: 1},
			wantMemory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: u(80), UsageBytes: u(100), RssBytes: u(50), PageFaults: u(7), MajorPageFaults: u(1)},
			wantSwap:   &runtimeapi.SwapUsage{Timestamp: ts, SwapUsageBytes: u(0)},
		},
		{
			name: "limits and PSI (cgroup v2)",
			sample: cgstats.Sample{
				MemoryUsage: 100, WorkingSet: 80, MemoryLimit: 1000, SwapUsage: 10, SwapLimit: 40,
				CPUPressure: cpuPSI, IOPressure: cpuPSI,
			},
			wantMemory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: u(80), AvailableBytes: u(920), UsageBytes: u(100), RssBytes: u(0), PageFaults: u(0), MajorPageFaults: u(0)},
			wantSwap:   &runtimeapi.SwapUsage{Timestamp: ts, SwapUsageBytes: u(10), SwapAvailableBytes: u(30)},
			wantCPUPSI: &runtimeapi.PsiStats{Some: &runtimeapi.PsiData{Total: 2000, Avg10: 1.5}, Full: &runtimeapi.PsiData{Total: 100}},
			wantIO: &runtimeapi.IoUsage{Timestamp: ts, Psi: &runtimeapi.PsiStats{
				Some: &runtimeapi.PsiData{Total: 2000, Avg10: 1.5}, Full: &runtimeapi.PsiData{Total: 100},
			}},
		},
		{
			name:       "working set above the limit",
			sample:     cgstats.Sample{MemoryUsage: 100, WorkingSet: 100, MemoryLimit: 90},
			wantMemory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: u(100), AvailableBytes: u(0), UsageBytes: u(100), RssBytes: u(0), PageFaults: u(0), MajorPageFaults: u(0)},
			wantSwap:   &runtimeapi.SwapUsage{Timestamp: ts, SwapUsageBytes: u(0)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := sandbox.ContainerView{Container: state.Container{ID: "c"}}
			got := criStats(v, sandbox.ContainerStats{Timestamp: at, Sample: tc.sample})
			if !proto.Equal(got.GetMemory(), tc.wantMemory) {
				t.Errorf("memory = %v, want %v", got.GetMemory(), tc.wantMemory)
			}
			if !proto.Equal(got.GetSwap(), tc.wantSwap) {
				t.Errorf("swap = %v, want %v", got.GetSwap(), tc.wantSwap)
			}
			if !proto.Equal(got.GetCpu().GetPsi(), tc.wantCPUPSI) {
				t.Errorf("cpu psi = %v, want %v", got.GetCpu().GetPsi(), tc.wantCPUPSI)
			}
			if !proto.Equal(got.GetIo(), tc.wantIO) {
				t.Errorf("io = %v, want %v", got.GetIo(), tc.wantIO)
			}
		})
	}
}
