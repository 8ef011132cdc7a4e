package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/cgstats"
)

// CRI metrics (KEP-2371): with the PodAndContainerStatsFromCRI feature
// gate kubelet serves /metrics/cadvisor from ListPodSandboxMetrics instead
// of cAdvisor, under the descriptors ListMetricDescriptors gave once at its
// start (a metric whose name was not described is dropped). The names,
// help and label keys are cAdvisor's, as containerd's CRI plugin gives
// them; the values come from the sample ListPodSandboxStats takes (each
// container's cgroup, v1 or v2, and the pod's interfaces from its network
// namespace), and the writable layer's cached measurement.
//
// The CRI carries each value as an unsigned integer, so the *_seconds_total
// counters are whole seconds (as containerd and CRI-O give them).

// The label keys: a container's metrics carry pod, namespace, container,
// id (the container's ID) and image; the pod's network metrics the same,
// with container and image empty and id the pod's, plus the interface.
var (
	baseLabelKeys    = []string{"pod", "namespace", "container", "id", "image"}
	networkLabelKeys = append(append([]string(nil), baseLabelKeys...), "interface")
	diskLabelKeys    = append(append([]string(nil), baseLabelKeys...), "device")
	failureLabelKeys = append(append([]string(nil), baseLabelKeys...), "failure_type", "scope")
)

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// seconds converts nanoseconds to the whole seconds a CRI metric carries.
func seconds(ns uint64) uint64 { return ns / uint64(time.Second) }

// cgroupMetric is one metric of a container's cgroup sample; ok false
// leaves it out of a sample that lacks it (pressure without PSI).
type cgroupMetric struct {
	name, help string
	typ        runtimeapi.MetricType
	value      func(s cgstats.Sample) (v uint64, ok bool)
}

func always(f func(s cgstats.Sample) uint64) func(cgstats.Sample) (uint64, bool) {
	return func(s cgstats.Sample) (uint64, bool) { return f(s), true }
}

// pressure is one PSI line's total stall time, in seconds, when the
// cgroup has PSI (cgroup v2 with PSI on).
func pressure(p func(s cgstats.Sample) *cgstats.Pressure, full bool) func(cgstats.Sample) (uint64, bool) {
	return func(s cgstats.Sample) (uint64, bool) {
		ps := p(s)
		if ps == nil {
			return 0, false
		}
		if full {
			return seconds(ps.Full.TotalNanos), true
		}
		return seconds(ps.Some.TotalNanos), true
	}
}

var cgroupMetrics = []cgroupMetric{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, always(func(s cgstats.Sample) uint64 { return seconds(s.CPUUsageNanos) })},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, always(func(s cgstats.Sample) uint64 { return seconds(s.CPUUserNanos) })},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, always(func(s cgstats.Sample) uint64 { return seconds(s.CPUSystemNanos) })},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, always(func(s cgstats.Sample) uint64 { return s.CFSPeriods })},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, always(func(s cgstats.Sample) uint64 { return s.CFSThrottledPeriods })},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, always(func(s cgstats.Sample) uint64 { return seconds(s.CFSThrottledNanos) })},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", gauge, always(func(s cgstats.Sample) uint64 { return s.MemoryUsage })},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, always(func(s cgstats.Sample) uint64 { return s.WorkingSet })},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, always(func(s cgstats.Sample) uint64 { return s.RSS })},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, always(func(s cgstats.Sample) uint64 { return s.Cache })},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, always(func(s cgstats.Sample) uint64 { return s.MappedFile })},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, always(func(s cgstats.Sample) uint64 { return s.KernelMemory })},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, always(func(s cgstats.Sample) uint64 { return s.SwapUsage })},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", gauge, always(func(s cgstats.Sample) uint64 { return s.MemoryMaxUsage })},
	{"container_memory_failcnt", "Number of memory usage hits limits", counter, always(func(s cgstats.Sample) uint64 { return s.MemoryFailcnt })},
	{"container_memory_total_active_file_bytes", "Current total active file in bytes.", gauge, always(func(s cgstats.Sample) uint64 { return s.ActiveFile })},
	{"container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.", gauge, always(func(s cgstats.Sample) uint64 { return s.InactiveFile })},
	{"container_processes", "Number of processes running inside the container.", gauge, always(func(s cgstats.Sample) uint64 { return s.Processes })},
	// pids.current counts tasks, threads among them.
	{"container_threads", "Number of threads running inside the container", gauge, always(func(s cgstats.Sample) uint64 { return s.Processes })},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero", gauge, always(func(s cgstats.Sample) uint64 { return s.ProcessLimit })},
	{"container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", counter, pressure(func(s cgstats.Sample) *cgstats.Pressure { return s.CPUPressure }, false)},
	{"container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", counter, pressure(func(s cgstats.Sample) *cgstats.Pressure { return s.CPUPressure }, true)},
	{"container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", counter, pressure(func(s cgstats.Sample) *cgstats.Pressure { return s.MemoryPressure }, false)},
	{"container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", counter, pressure(func(s cgstats.Sample) *cgstats.Pressure { return s.MemoryPressure }, true)},
	{"container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", counter, pressure(func(s cgstats.Sample) *cgstats.Pressure { return s.IOPressure }, false)},
	{"container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", counter, pressure(func(s cgstats.Sample) *cgstats.Pressure { return s.IOPressure }, true)},
}

// The page fault counters are one metric with the failure type a label.
const memoryFailures = "container_memory_failures_total"

// containerMetric is one metric of a container's record and running
// state; res is its record's resources (zero if it has none).
type containerMetric struct {
	name, help string
	value      func(v sandbox.ContainerView, res state.Resources, now time.Time) (uint64, bool)
}

// positive is n as a gauge, if it is set.
func positive[T int64 | uint64](n T) (uint64, bool) { return uint64(max(n, 0)), n > 0 }

var containerMetrics = []containerMetric{
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", func(v sandbox.ContainerView, _ state.Resources, _ time.Time) (uint64, bool) {
		return uint64(max(v.Shim.StartedAt.Unix(), 0)), !v.Shim.StartedAt.IsZero()
	}},
	{"container_last_seen", "Last time a container was seen by the exporter", func(_ sandbox.ContainerView, _ state.Resources, now time.Time) (uint64, bool) {
		return uint64(max(now.Unix(), 0)), true
	}},
	{"container_spec_cpu_period", "CPU period of the container.", func(_ sandbox.ContainerView, r state.Resources, _ time.Time) (uint64, bool) {
		return positive(r.CPUPeriod)
	}},
	{"container_spec_cpu_quota", "CPU quota of the container.", func(_ sandbox.ContainerView, r state.Resources, _ time.Time) (uint64, bool) {
		return positive(r.CPUQuota)
	}},
	{"container_spec_cpu_shares", "CPU share of the container.", func(_ sandbox.ContainerView, r state.Resources, _ time.Time) (uint64, bool) {
		return positive(r.CPUShares)
	}},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", func(_ sandbox.ContainerView, r state.Resources, _ time.Time) (uint64, bool) {
		return positive(r.MemoryLimit)
	}},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", func(_ sandbox.ContainerView, r state.Resources, _ time.Time) (uint64, bool) {
		return positive(r.MemorySwapLimit)
	}},
}

// fsMetric is one metric of a container's writable layer measurement.
type fsMetric struct {
	name, help string
	value      func(u image.Usage) uint64
}

var fsMetrics = []fsMetric{
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", func(u image.Usage) uint64 { return u.UsedBytes }},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", func(u image.Usage) uint64 { return u.Fs.CapacityBytes }},
	{"container_fs_inodes_total", "Number of Inodes", func(u image.Usage) uint64 { return u.Fs.Inodes }},
	{"container_fs_inodes_free", "Number of available Inodes", func(u image.Usage) uint64 { return u.Fs.InodesFree }},
}

// ioMetric is one metric of a container's I/O on one block device
// (cgroup v2), whose "major:minor" is the device label.
type ioMetric struct {
	name, help string
	value      func(d cgstats.IODevice) uint64
}

var ioMetrics = []ioMetric{
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read", func(d cgstats.IODevice) uint64 { return d.ReadBytes }},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written", func(d cgstats.IODevice) uint64 { return d.WriteBytes }},
	{"container_fs_reads_total", "Cumulative count of reads completed", func(d cgstats.IODevice) uint64 { return d.Reads }},
	{"container_fs_writes_total", "Cumulative count of writes completed", func(d cgstats.IODevice) uint64 { return d.Writes }},
}

// networkMetric is one metric of a pod interface's counters.
type networkMetric struct {
	name, help string
	value      func(i sandbox.InterfaceStats) uint64
}

var networkMetrics = []networkMetric{
	{"container_network_receive_bytes_total", "Cumulative count of bytes received", func(i sandbox.InterfaceStats) uint64 { return i.RxBytes }},
	{"container_network_receive_packets_total", "Cumulative count of packets received", func(i sandbox.InterfaceStats) uint64 { return i.RxPackets }},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", func(i sandbox.InterfaceStats) uint64 { return i.RxDropped }},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", func(i sandbox.InterfaceStats) uint64 { return i.RxErrors }},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", func(i sandbox.InterfaceStats) uint64 { return i.TxBytes }},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted", func(i sandbox.InterfaceStats) uint64 { return i.TxPackets }},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", func(i sandbox.InterfaceStats) uint64 { return i.TxDropped }},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", func(i sandbox.InterfaceStats) uint64 { return i.TxErrors }},
}

// metricDescriptors lists every metric the tables above can give, each
// with its label keys.
func metricDescriptors() []*runtimeapi.MetricDescriptor {
	var out []*runtimeapi.MetricDescriptor
	add := func(name, help string, keys []string) {
		out = append(out, &runtimeapi.MetricDescriptor{Name: name, Help: help, LabelKeys: keys})
	}
	for _, m := range cgroupMetrics {
		add(m.name, m.help, baseLabelKeys)
	}
	add(memoryFailures, "Cumulative count of memory allocation failures.", failureLabelKeys)
	for _, m := range containerMetrics {
		add(m.name, m.help, baseLabelKeys)
	}
	for _, m := range fsMetrics {
		add(m.name, m.help, diskLabelKeys)
	}
	for _, m := range ioMetrics {
		add(m.name, m.help, diskLabelKeys)
	}
	for _, m := range networkMetrics {
		add(m.name, m.help, networkLabelKeys)
	}
	return out
}

// ListMetricDescriptors describes the metrics ListPodSandboxMetrics gives.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: metricDescriptors()}, nil
}

// ListPodSandboxMetrics samples every ready pod and its running
// containers, as ListPodSandboxStats does.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	views := s.opts.Sandboxes.List(sandbox.Filter{})
	out := make([]*runtimeapi.PodSandboxMetrics, 0, len(views))
	for _, v := range views {
		if !v.Ready {
			continue
		}
		pv, st, err := s.opts.Sandboxes.PodStats(v.ID)
		if err != nil {
			continue // removed or stopped meanwhile
		}
		out = append(out, podMetrics(pv, st, s.layerUsage, time.Now()))
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics, answered in chunks.
func (s *Server) StreamPodSandboxMetrics(req *runtimeapi.StreamPodSandboxMetricsRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxMetricsResponse]) error {
	resp, err := s.ListPodSandboxMetrics(stream.Context(), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		return err
	}
	return sendChunks(resp.GetPodMetrics(), func(c []*runtimeapi.PodSandboxMetrics) *runtimeapi.StreamPodSandboxMetricsResponse {
		return &runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: c}
	}, stream.Send)
}

// layerUsage is the image service's cached writable layer measurement of
// container id (false before the first, or without an image service).
func (s *Server) layerUsage(id string) (image.Usage, bool) {
	svc, err := s.images()
	if err != nil {
		return image.Usage{}, false
	}
	return svc.WritableLayerUsage(id)
}

// podMetrics translates one pod's sample: the pod's network metrics, and
// for each running container its cgroup's (I/O per device), its record's
// and its writable layer's. Live values carry timestamp 0, as the CRI asks; the writable
// layer's carry the time of their measurement.
func podMetrics(v sandbox.View, st sandbox.PodStats, layers func(id string) (image.Usage, bool), now time.Time) *runtimeapi.PodSandboxMetrics {
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: v.ID}
	podLabels := []string{v.Metadata.Name, v.Metadata.Namespace, "", v.ID, ""}
	for _, i := range st.Interfaces {
		labels := append(append([]string(nil), podLabels...), i.Name)
		for _, m := range networkMetrics {
			out.Metrics = append(out.Metrics, metric(m.name, counter, 0, labels, m.value(i)))
		}
	}
	for _, c := range st.Containers {
		if c.View.State() != sandbox.ContainerRunning {
			continue // its cgroup is gone: cAdvisor shows no stopped containers either
		}
		cm := &runtimeapi.ContainerMetrics{ContainerId: c.View.ID}
		labels := []string{v.Metadata.Name, v.Metadata.Namespace, c.View.Name, c.View.ID, imageLabel(c.View)}
		sample := c.Stats.Sample
		for _, m := range cgroupMetrics {
			if val, ok := m.value(sample); ok {
				cm.Metrics = append(cm.Metrics, metric(m.name, m.typ, 0, labels, val))
			}
		}
		for _, d := range sample.IO {
			l := append(append([]string(nil), labels...), fmt.Sprintf("%d:%d", d.Major, d.Minor))
			for _, m := range ioMetrics {
				cm.Metrics = append(cm.Metrics, metric(m.name, counter, 0, l, m.value(d)))
			}
		}
		for _, f := range []struct {
			kind string
			n    uint64
		}{{"pgfault", sample.PageFaults}, {"pgmajfault", sample.MajorPageFaults}} {
			l := append(append([]string(nil), labels...), f.kind, "container")
			cm.Metrics = append(cm.Metrics, metric(memoryFailures, counter, 0, l, f.n))
		}
		var res state.Resources
		if c.View.Resources != nil {
			res = *c.View.Resources
		}
		for _, m := range containerMetrics {
			if val, ok := m.value(c.View, res, now); ok {
				cm.Metrics = append(cm.Metrics, metric(m.name, gauge, 0, labels, val))
			}
		}
		if u, ok := layers(c.View.ID); ok {
			l := append(append([]string(nil), labels...), u.Mountpoint)
			for _, m := range fsMetrics {
				cm.Metrics = append(cm.Metrics, metric(m.name, gauge, u.Timestamp.UnixNano(), l, m.value(u)))
			}
		}
		out.ContainerMetrics = append(out.ContainerMetrics, cm)
	}
	return out
}

// imageLabel names a container's image for people: kubelet asks for an
// image by its ID, so the repo digest it resolved to (a name) is preferred.
func imageLabel(v sandbox.ContainerView) string {
	if v.ImageRef != "" {
		return v.ImageRef
	}
	return v.Image
}

func metric(name string, typ runtimeapi.MetricType, ts int64, labels []string, v uint64) *runtimeapi.Metric {
	return &runtimeapi.Metric{Name: name, Timestamp: ts, MetricType: typ, LabelValues: labels, Value: &runtimeapi.UInt64Value{Value: v}}
}
