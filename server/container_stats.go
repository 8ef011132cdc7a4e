package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/cgstats"
)

// ContainerStats samples one container's CPU and memory from its cgroup,
// and gives its writable layer's last measured usage.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	v, st, err := s.opts.Sandboxes.ContainerStats(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	out := criStats(v, st)
	out.WritableLayer = s.writableLayer(v.ID)
	return &runtimeapi.ContainerStatsResponse{Stats: out}, nil
}

// ListContainerStats samples the containers matching the filter.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	views := s.opts.Sandboxes.Containers(sandbox.ContainerFilter{IDPrefix: f.GetId(), PodID: f.GetPodSandboxId(), Labels: f.GetLabelSelector()})
	out := make([]*runtimeapi.ContainerStats, 0, len(views))
	for _, v := range views {
		_, st, err := s.opts.Sandboxes.ContainerStats(v.ID)
		if err != nil {
			continue // removed meanwhile
		}
		cs := criStats(v, st)
		cs.WritableLayer = s.writableLayer(v.ID)
		out = append(out, cs)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

// writableLayer is container id's writable layer usage as last measured
// (image.Service.WritableLayerUsage: a cache lookup, never a walk), nil
// before the first measurement or without an image service.
func (s *Server) writableLayer(id string) *runtimeapi.FilesystemUsage {
	u, ok := s.layerUsage(id)
	if !ok {
		return nil
	}
	return fsUsage(u)
}

func criStats(v sandbox.ContainerView, st sandbox.ContainerStats) *runtimeapi.ContainerStats {
	ts := st.Timestamp.UnixNano()
	out := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id:          v.ID,
			Metadata:    &runtimeapi.ContainerMetadata{Name: v.Name, Attempt: v.Attempt},
			Labels:      v.Labels,
			Annotations: v.Annotations,
		},
		Cpu: &runtimeapi.CpuUsage{
			Timestamp:            ts,
			UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUUsageNanos},
			UsageNanoCores:       &runtimeapi.UInt64Value{Value: st.NanoCores},
			Psi:                  criPSI(st.CPUPressure),
		},
		Memory: &runtimeapi.MemoryUsage{
			Timestamp:       ts,
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.WorkingSet},
			UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemoryUsage},
			RssBytes:        &runtimeapi.UInt64Value{Value: st.RSS},
			PageFaults:      &runtimeapi.UInt64Value{Value: st.PageFaults},
			MajorPageFaults: &runtimeapi.UInt64Value{Value: st.MajorPageFaults},
			Psi:             criPSI(st.MemoryPressure),
		},
		Swap: &runtimeapi.SwapUsage{
			Timestamp:      ts,
			SwapUsageBytes: &runtimeapi.UInt64Value{Value: st.SwapUsage},
		},
	}
	// Available memory is defined against a limit (limit less working
	// set, as kubelet computes it); without one it stays unset.
	if st.MemoryLimit > 0 {
		avail := uint64(0)
		if st.MemoryLimit > st.WorkingSet {
			avail = st.MemoryLimit - st.WorkingSet
		}
		out.Memory.AvailableBytes = &runtimeapi.UInt64Value{Value: avail}
	}
	if st.SwapLimit > 0 {
		avail := uint64(0)
		if st.SwapLimit > st.SwapUsage {
			avail = st.SwapLimit - st.SwapUsage
		}
		out.Swap.SwapAvailableBytes = &runtimeapi.UInt64Value{Value: avail}
	}
	// The CRI's IoUsage carries only pressure.
	if st.IOPressure != nil {
		out.Io = &runtimeapi.IoUsage{Timestamp: ts, Psi: criPSI(st.IOPressure)}
	}
	return out
}

// criPSI converts pressure stall information (nil when the cgroup has none:
// cgroup v1, or PSI off).
func criPSI(p *cgstats.Pressure) *runtimeapi.PsiStats {
	if p == nil {
		return nil
	}
	conv := func(d cgstats.PressureData) *runtimeapi.PsiData {
		return &runtimeapi.PsiData{Total: d.TotalNanos, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &runtimeapi.PsiStats{Some: conv(p.Some), Full: conv(p.Full)}
}
