package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
)

// ContainerStats samples one container's CPU and memory from its cgroup.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	v, st, err := s.opts.Sandboxes.ContainerStats(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: criStats(v, st)}, nil
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
		out = append(out, criStats(v, st))
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

func criStats(v sandbox.ContainerView, st sandbox.ContainerStats) *runtimeapi.ContainerStats {
	ts := st.Timestamp.UnixNano()
	return &runtimeapi.ContainerStats{
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
		},
		Memory: &runtimeapi.MemoryUsage{
			Timestamp:       ts,
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.WorkingSet},
			UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemoryUsage},
			RssBytes:        &runtimeapi.UInt64Value{Value: st.RSS},
			PageFaults:      &runtimeapi.UInt64Value{Value: st.PageFaults},
			MajorPageFaults: &runtimeapi.UInt64Value{Value: st.MajorPageFaults},
		},
	}
}
