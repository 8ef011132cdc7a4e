package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	shimapi "github.com/crib-runtime/crib/api/shim"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/sandbox/cgstats"
)

// PodStats is one sample of a pod's resource use: the sums over its pause
// and app containers' cgroups, its network interfaces, its containers.
type PodStats struct {
	Timestamp     time.Time
	CPUUsageNanos uint64
	MemoryUsage   uint64
	WorkingSet    uint64
	RSS           uint64
	PageFaults    uint64
	// MajorPageFaults, like PageFaults, is cumulative.
	MajorPageFaults uint64
	Processes       uint64
	SwapUsage       uint64
	Interfaces      []InterfaceStats
	Containers      []ContainerStatsView
}

// add counts a container's cgroup in the pod's totals. The pod's cgroups
// (pause's and each container's) are siblings below its cgroup parent, so
// their sums are the pod's use.
func (st *PodStats) add(s cgstats.Sample) {
	st.CPUUsageNanos += s.CPUUsageNanos
	st.MemoryUsage += s.MemoryUsage
	st.WorkingSet += s.WorkingSet
	st.RSS += s.RSS
	st.PageFaults += s.PageFaults
	st.MajorPageFaults += s.MajorPageFaults
	st.Processes += s.Processes
	st.SwapUsage += s.SwapUsage
}

// InterfaceStats are one pod interface's counters.
type InterfaceStats struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// ContainerStatsView pairs a container with its sample.
type ContainerStatsView struct {
	View  ContainerView
	Stats ContainerStats
}

// PodStats samples pod id: its pause container's cgroup and its
// containers' (each half samples its own), and its interfaces.
func (m *Manager) PodStats(id string) (View, PodStats, error) {
	v, err := m.Get(id)
	if err != nil {
		return View{}, PodStats{}, err
	}
	st := PodStats{Timestamp: time.Now()}
	pause := m.ReadCgroup(v.ID, pauseCgroupPaths(&v.Sandbox), v.CgroupsPath)
	st.add(pause)
	for _, c := range m.Containers(ContainerFilter{PodID: v.ID}) {
		cs := m.Sample(c)
		st.Containers = append(st.Containers, ContainerStatsView{View: c, Stats: cs})
		st.add(cs.Sample)
	}
	if v.NetNSPath != "" && v.Ready {
		ifs, err := podInterfaces(v.PausePID, v.PauseStartTime)
		if err != nil {
			return View{}, PodStats{}, fmt.Errorf("pod %s network stats: %w", v.ID, err)
		}
		st.Interfaces = ifs
	}
	return v, st, nil
}

// podInterfaces reads the counters of every interface but lo in the pod's
// network namespace from /proc/<pause pid>/net/dev, which shows the
// namespace of that process: no setns, no netlink socket, one read per pod
// (stats are polled for every pod every few seconds). The pause process's
// start time is checked after the read, so a reused PID is not counted.
func podInterfaces(pausePID int, pauseStart uint64) ([]InterfaceStats, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pausePID) + "/net/dev")
	if err != nil {
		return nil, fmt.Errorf("read interface counters of pause process %d: %w", pausePID, err)
	}
	if !procfs.Alive(pausePID, pauseStart) {
		return nil, fmt.Errorf("pause process %d exited while its interface counters were read", pausePID)
	}
	return parseNetDev(data)
}

// parseNetDev parses /proc/net/dev: two header lines, then per interface
// "name: rx bytes packets errs drop fifo frame compressed multicast tx
// bytes packets errs drop fifo colls carrier compressed". lo is left out.
func parseNetDev(data []byte) ([]InterfaceStats, error) {
	var out []InterfaceStats
	for _, line := range strings.Split(string(data), "\n") {
		name, counters, ok := strings.Cut(line, ":")
		if !ok {
			continue // a header line, or the empty last line
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(counters)
		if len(f) < 16 {
			return nil, fmt.Errorf("net/dev line for %s has %d fields, want 16", name, len(f))
		}
		if name == "lo" {
			continue
		}
		var n [8]uint64
		for i, idx := range []int{0, 1, 2, 3, 8, 9, 10, 11} { // bytes, packets, errs, drop: rx, then tx
			v, err := strconv.ParseUint(f[idx], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev counter %d of %s: %w", idx, name, err)
			}
			n[i] = v
		}
		out = append(out, InterfaceStats{
			Name:    name,
			RxBytes: n[0], RxPackets: n[1], RxErrors: n[2], RxDropped: n[3],
			TxBytes: n[4], TxPackets: n[5], TxErrors: n[6], TxDropped: n[7],
		})
	}
	return out, nil
}

// pauseCgroupPaths are the pause container's cgroup directories as the
// pod's shim recorded them (nil if it has not).
func pauseCgroupPaths(rec *state.Sandbox) map[string]string {
	var st shimapi.State
	if err := state.ReadJSON(shimapi.StateFile(rec.ShimDir, rec.ID), &st); err != nil {
		return nil
	}
	return st.CgroupPaths
}
