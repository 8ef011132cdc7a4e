package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/cgstats"
)

// wantMetric is one metric a test expects: its name, the label values
// after the five base ones (interface, device, failure type), and value.
type wantMetric struct {
	name  string
	extra []string
	value uint64
	typ   runtimeapi.MetricType
	ts    int64
}

func TestPodMetrics(t *testing.T) {
	now := time.Unix(5000, 0)
	measured := time.Unix(4990, 0)
	pod := sandbox.View{Sandbox: state.Sandbox{ID: "pod1", Metadata: state.PodMetadata{Name: "web", Namespace: "prod"}}, Ready: true}
	running := func(id string, res *state.Resources) sandbox.ContainerView {
		return sandbox.ContainerView{
			Container: state.Container{ID: id, Name: "app-" + id, Image: "sha256:0123", ImageRef: "docker.io/library/busybox@sha256:abcd", Resources: res},
			Shim:      shimapi.State{Status: shimapi.StatusRunning, StartedAt: time.Unix(4000, 0)},
		}
	}
	psi := &cgstats.Pressure{Some: cgstats.PressureData{TotalNanos: 3_500_000_000}, Full: cgstats.PressureData{TotalNanos: 1_000_000_000}}
	v2 := cgstats.Sample{
		CPUUsageNanos: 2_900_000_000, CPUUserNanos: 2_000_000_000, CPUSystemNanos: 900_000_000,
		CFSPeriods: 10, CFSThrottledPeriods: 3, CFSThrottledNanos: 1_500_000_000,
		MemoryUsage: 100 << 20, WorkingSet: 80 << 20, RSS: 60 << 20, Cache: 30 << 20, PageFaults: 1234, MajorPageFaults: 5,
		Processes: 4, ProcessLimit: 1024, CPUPressure: psi,
		IO: []cgstats.IODevice{{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}},
	}
	layer := image.Usage{
		Mountpoint: "/var/lib/crib/storage", Timestamp: measured, UsedBytes: 8192, Inodes: 3,
		Fs: image.FsCapacity{CapacityBytes: 1 << 30, AvailableBytes: 1 << 29, Inodes: 1000, InodesFree: 900},
	}
	layers := func(id string) (image.Usage, bool) { return layer, id == "c1" }
	eth0 := sandbox.InterfaceStats{Name: "eth0", RxBytes: 1000, RxPackets: 10, RxDropped: 1, RxErrors: 2, TxBytes: 500, TxPackets: 5, TxDropped: 3, TxErrors: 4}

	tests := []struct {
		name  string
		st    sandbox.PodStats
		ctrs  []string // container IDs expected, in order
		pod   []wantMetric
		c1    []wantMetric
		c1Not []string // names c1 must not have
	}{
		{
			name: "running container on cgroup v2 with limits, PSI, a measured layer; one interface",
			st: sandbox.PodStats{
				Interfaces: []sandbox.InterfaceStats{eth0},
				Containers: []sandbox.ContainerStatsView{{
					View:  running("c1", &state.Resources{CPUPeriod: 100000, CPUQuota: 50000, CPUShares: 512, MemoryLimit: 128 << 20}),
					Stats: sandbox.ContainerStats{Sample: v2},
				}},
			},
			ctrs: []string{"c1"},
			pod: []wantMetric{
				{name: "container_network_receive_bytes_total", extra: []string{"eth0"}, value: 1000, typ: counter},
				{name: "container_network_receive_packets_total", extra: []string{"eth0"}, value: 10, typ: counter},
				{name: "container_network_receive_packets_dropped_total", extra: []string{"eth0"}, value: 1, typ: counter},
				{name: "container_network_receive_errors_total", extra: []string{"eth0"}, value: 2, typ: counter},
				{name: "container_network_transmit_bytes_total", extra: []string{"eth0"}, value: 500, typ: counter},
				{name: "container_network_transmit_packets_total", extra: []string{"eth0"}, value: 5, typ: counter},
				{name: "container_network_transmit_packets_dropped_total", extra: []string{"eth0"}, value: 3, typ: counter},
				{name: "container_network_transmit_errors_total", extra: []string{"eth0"}, value: 4, typ: counter},
			},
			c1: []wantMetric{
				{name: "container_cpu_usage_seconds_total", value: 2, typ: counter}, // whole seconds
				{name: "container_cpu_user_seconds_total", value: 2, typ: counter},
				{name: "container_cpu_system_seconds_total", value: 0, typ: counter},
				{name: "container_cpu_cfs_periods_total", value: 10, typ: counter},
				{name: "container_cpu_cfs_throttled_periods_total", value: 3, typ: counter},
				{name: "container_cpu_cfs_throttled_seconds_total", value: 1, typ: counter},
				{name: "container_memory_usage_bytes", value: 100 << 20, typ: gauge},
				{name: "container_memory_working_set_bytes", value: 80 << 20, typ: gauge},
				{name: "container_memory_rss", value: 60 << 20, typ: gauge},
				{name: "container_memory_cache", value: 30 << 20, typ: gauge},
				{name: "container_memory_failures_total", extra: []string{"pgfault", "container"}, value: 1234, typ: counter},
				{name: "container_memory_failures_total", extra: []string{"pgmajfault", "container"}, value: 5, typ: counter},
				{name: "container_processes", value: 4, typ: gauge},
				{name: "container_fs_reads_bytes_total", extra: []string{"8:0"}, value: 4096, typ: counter},
				{name: "container_fs_writes_bytes_total", extra: []string{"8:0"}, value: 8192, typ: counter},
				{name: "container_fs_reads_total", extra: []string{"8:0"}, value: 1, typ: counter},
				{name: "container_fs_writes_total", extra: []string{"8:0"}, value: 2, typ: counter},
				{name: "container_threads_max", value: 1024, typ: gauge},
				{name: "container_pressure_cpu_waiting_seconds_total", value: 3, typ: counter},
				{name: "container_pressure_cpu_stalled_seconds_total", value: 1, typ: counter},
				{name: "container_start_time_seconds", value: 4000, typ: gauge},
				{name: "container_last_seen", value: 5000, typ: gauge},
				{name: "container_spec_cpu_period", value: 100000, typ: gauge},
				{name: "container_spec_cpu_quota", value: 50000, typ: gauge},
				{name: "container_spec_cpu_shares", value: 512, typ: gauge},
				{name: "container_spec_memory_limit_bytes", value: 128 << 20, typ: gauge},
				// The cached measurement keeps its own time.
				{name: "container_fs_usage_bytes", extra: []string{"/var/lib/crib/storage"}, value: 8192, typ: gauge, ts: measured.UnixNano()},
				{name: "container_fs_limit_bytes", extra: []string{"/var/lib/crib/storage"}, value: 1 << 30, typ: gauge, ts: measured.UnixNano()},
				{name: "container_fs_inodes_total", extra: []string{"/var/lib/crib/storage"}, value: 1000, typ: gauge, ts: measured.UnixNano()},
				{name: "container_fs_inodes_free", extra: []string{"/var/lib/crib/storage"}, value: 900, typ: gauge, ts: measured.UnixNano()},
			},
			// No memory PSI in the sample, no swap limit in the record.
			c1Not: []string{"container_pressure_memory_waiting_seconds_total", "container_spec_memory_swap_limit_bytes"},
		},
		{
			name: "host network, no resources, no PSI, an exited container left out",
			st: sandbox.PodStats{Containers: []sandbox.ContainerStatsView{
				{View: sandbox.ContainerView{Container: state.Container{ID: "gone"}, Shim: shimapi.State{Status: shimapi.StatusStopped}}},
				{View: running("c1", nil), Stats: sandbox.ContainerStats{Sample: cgstats.Sample{CPUUsageNanos: 1}}},
			}},
			ctrs: []string{"c1"},
			c1: []wantMetric{
				{name: "container_cpu_usage_seconds_total", value: 0, typ: counter},
				{name: "container_threads_max", value: 0, typ: gauge}, // no pids.max
			},
			c1Not: []string{"container_pressure_cpu_waiting_seconds_total", "container_spec_memory_limit_bytes", "container_spec_cpu_quota"},
		},
		{
			name: "a container not measured yet has no fs metrics",
			st: sandbox.PodStats{Containers: []sandbox.ContainerStatsView{
				{View: running("c2", nil), Stats: sandbox.ContainerStats{Sample: v2}},
			}},
			ctrs: []string{"c2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := podMetrics(pod, tc.st, layers, now)
			if got.GetPodSandboxId() != "pod1" {
				t.Errorf("pod sandbox id %q", got.GetPodSandboxId())
			}
			checkDescribed(t, got)
			if len(got.GetMetrics()) != len(tc.pod) {
				t.Errorf("%d pod metrics, want %d", len(got.GetMetrics()), len(tc.pod))
			}
			for _, w := range tc.pod {
				checkMetric(t, got.GetMetrics(), []string{"web", "prod", "", "pod1", ""}, w)
			}
			var ids []string
			for _, c := range got.GetContainerMetrics() {
				ids = append(ids, c.GetContainerId())
			}
			if !slices.Equal(ids, tc.ctrs) {
				t.Fatalf("containers %v, want %v", ids, tc.ctrs)
			}
			ms := got.GetContainerMetrics()[0].GetMetrics()
			base := []string{"web", "prod", "app-" + tc.ctrs[0], tc.ctrs[0], "docker.io/library/busybox@sha256:abcd"}
			for _, w := range tc.c1 {
				checkMetric(t, ms, base, w)
			}
			for _, m := range ms {
				if slices.Contains(tc.c1Not, m.GetName()) {
					t.Errorf("unexpected metric %v", m)
				}
				if tc.ctrs[0] == "c2" && slices.ContainsFunc(fsMetrics, func(f fsMetric) bool { return f.name == m.GetName() }) {
					t.Errorf("fs metric of an unmeasured layer: %v", m)
				}
			}
		})
	}
}

// checkMetric finds w among ms by name and label values and compares it.
func checkMetric(t *testing.T, ms []*runtimeapi.Metric, base []string, w wantMetric) {
	t.Helper()
	labels := append(append([]string(nil), base...), w.extra...)
	for _, m := range ms {
		if m.GetName() == w.name && slices.Equal(m.GetLabelValues(), labels) {
			if m.GetValue().GetValue() != w.value || m.GetMetricType() != w.typ || m.GetTimestamp() != w.ts {
				t.Errorf("%s%v = %d %v ts %d, want %d %v ts %d", w.name, labels, m.GetValue().GetValue(), m.GetMetricType(), m.GetTimestamp(), w.value, w.typ, w.ts)
			}
			return
		}
	}
	t.Errorf("no metric %s%v", w.name, labels)
}

// checkDescribed: kubelet drops a metric whose name was not described,
// and its label values must match the described keys one for one.
func checkDescribed(t *testing.T, pm *runtimeapi.PodSandboxMetrics) {
	t.Helper()
	keys := map[string][]string{}
	for _, d := range metricDescriptors() {
		keys[d.GetName()] = d.GetLabelKeys()
	}
	all := pm.GetMetrics()
	for _, c := range pm.GetContainerMetrics() {
		all = append(all, c.GetMetrics()...)
	}
	for _, m := range all {
		k, ok := keys[m.GetName()]
		if !ok {
			t.Errorf("metric %s not described", m.GetName())
		} else if len(k) != len(m.GetLabelValues()) {
			t.Errorf("metric %s: %d label values for keys %v", m.GetName(), len(m.GetLabelValues()), k)
		}
	}
}

func TestMetricDescriptors(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range metricDescriptors() {
		if seen[d.GetName()] {
			t.Errorf("%s described twice", d.GetName())
		}
		seen[d.GetName()] = true
		if !strings.HasPrefix(d.GetName(), "container_") || d.GetHelp() == "" || !slices.Equal(d.GetLabelKeys()[:5], baseLabelKeys) {
			t.Errorf("descriptor %v", d)
		}
	}
	// The ones kubelet's dashboards and the summary's users read most.
	for _, name := range []string{
		"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss",
		"container_network_receive_bytes_total", "container_network_transmit_bytes_total", "container_fs_usage_bytes",
		"container_cpu_cfs_throttled_periods_total", "container_spec_memory_limit_bytes",
	} {
		if !seen[name] {
			t.Errorf("%s not described", name)
		}
	}
}
