package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
)

// PodSandboxStats samples one pod: CPU, memory and process count summed
// over its cgroups, its interfaces' counters, its containers.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	v, st, err := s.opts.Sandboxes.PodStats(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.withWritableLayers(criPodStats(v, st))}, nil
}

// ListPodSandboxStats samples the pods matching the filter.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	views := s.opts.Sandboxes.List(sandbox.Filter{IDPrefix: f.GetId(), Labels: f.GetLabelSelector()})
	out := make([]*runtimeapi.PodSandboxStats, 0, len(views))
	for _, v := range views {
		pv, st, err := s.opts.Sandboxes.PodStats(v.ID)
		if err != nil {
			continue // removed or stopped meanwhile
		}
		out = append(out, s.withWritableLayers(criPodStats(pv, st)))
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

// withWritableLayers adds each container's writable layer usage.
func (s *Server) withWritableLayers(ps *runtimeapi.PodSandboxStats) *runtimeapi.PodSandboxStats {
	for _, c := range ps.GetLinux().GetContainers() {
		c.WritableLayer = s.writableLayer(c.GetAttributes().GetId())
	}
	return ps
}

func criPodStats(v sandbox.View, st sandbox.PodStats) *runtimeapi.PodSandboxStats {
	ts := st.Timestamp.UnixNano()
	linux := &runtimeapi.LinuxPodSandboxStats{
		Cpu: &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUUsageNanos}},
		Memory: &runtimeapi.MemoryUsage{
			Timestamp:       ts,
			UsageBytes:      &runtimeapi.UInt64Value{Value: st.MemoryUsage},
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.WorkingSet},
			RssBytes:        &runtimeapi.UInt64Value{Value: st.RSS},
			PageFaults:      &runtimeapi.UInt64Value{Value: st.PageFaults},
			MajorPageFaults: &runtimeapi.UInt64Value{Value: st.MajorPageFaults},
		},
		Process: &runtimeapi.ProcessUsage{Timestamp: ts, ProcessCount: &runtimeapi.UInt64Value{Value: st.Processes}},
	}
	if len(st.Interfaces) > 0 {
		net := &runtimeapi.NetworkUsage{Timestamp: ts}
		for _, i := range st.Interfaces {
			u := &runtimeapi.NetworkInterfaceUsage{
				Name:    i.Name,
				RxBytes: &runtimeapi.UInt64Value{Value: i.RxBytes}, RxErrors: &runtimeapi.UInt64Value{Value: i.RxErrors},
				TxBytes: &runtimeapi.UInt64Value{Value: i.TxBytes}, TxErrors: &runtimeapi.UInt64Value{Value: i.TxErrors},
			}
			if i.Name == "eth0" || net.DefaultInterface == nil {
				net.DefaultInterface = u
			}
			net.Interfaces = append(net.Interfaces, u)
		}
		linux.Network = net
	}
	for _, c := range st.Containers {
		linux.Containers = append(linux.Containers, criStats(c.View, c.Stats))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id: v.ID, Metadata: podMetadata(v), Labels: v.Labels, Annotations: v.Annotations,
		},
		Linux: linux,
	}
}
