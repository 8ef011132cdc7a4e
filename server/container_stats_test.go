package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
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

// layerImages is an image service that knows only writable layers.
type layerImages struct {
	ImageService
	layers map[string]image.Usage
}

func (l layerImages) WritableLayerUsage(id string) (image.Usage, bool) {
	u, ok := l.layers[id]
	return u, ok
}

func TestWritableLayer(t *testing.T) {
	at := time.Unix(100, 0)
	imgs := layerImages{layers: map[string]image.Usage{
		"measured": {Mountpoint: "/var/lib/crib/storage", Timestamp: at, UsedBytes: 4096, Inodes: 3},
	}}
	tests := []struct {
		name   string
		images ImageService
		id     string
		want   *runtimeapi.FilesystemUsage
	}{
		{
			name: "measured", images: imgs, id: "measured",
			want: &runtimeapi.FilesystemUsage{
				Timestamp:  at.UnixNano(),
				FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: "/var/lib/crib/storage"},
				UsedBytes:  &runtimeapi.UInt64Value{Value: 4096},
				InodesUsed: &runtimeapi.UInt64Value{Value: 3},
			},
		},
		{name: "not measured yet", images: imgs, id: "new"},
		{name: "no image service", id: "measured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Images: tc.images})
			if got := s.writableLayer(tc.id); !proto.Equal(got, tc.want) {
				t.Errorf("writableLayer(%s) = %v, want %v", tc.id, got, tc.want)
			}
		})
	}
}
