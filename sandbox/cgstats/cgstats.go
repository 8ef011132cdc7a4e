// Package cgstats samples the resource use of one cgroup through
// opencontainers/cgroups (the library runc's libcontainer manages cgroups
// with), on cgroup v1 and v2 alike, and reduces it to what the CRI reports.
package cgstats

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
)

// Sample is one reading of a cgroup.
type Sample struct {
	// CPUUsageNanos is the cgroup's cumulative CPU time; CPUUserNanos and
	// CPUSystemNanos its parts in user and kernel mode.
	CPUUsageNanos, CPUUserNanos, CPUSystemNanos uint64
	// CFSPeriods and CFSThrottledPeriods count the CFS quota's enforcement
	// periods and those in which the cgroup was throttled;
	// CFSThrottledNanos is the time it was throttled (all zero without a
	// quota).
	CFSPeriods, CFSThrottledPeriods, CFSThrottledNanos uint64
	// MemoryUsage is the memory charged to the cgroup (page cache
	// included); WorkingSet is that less the inactive file pages, as
	// kubelet computes it; RSS is anonymous memory (v1: total_rss, v2:
	// anon).
	MemoryUsage, WorkingSet, RSS uint64
	// PageFaults and MajorPageFaults are cumulative counts.
	PageFaults, MajorPageFaults uint64
	// MemoryLimit is the cgroup's memory limit, 0 if it has none.
	MemoryLimit uint64
	// MemoryMaxUsage is the peak of MemoryUsage (v2: memory.peak, kernel
	// 5.19 on; 0 before); MemoryFailcnt how often usage hit the limit (v1
	// only).
	MemoryMaxUsage, MemoryFailcnt uint64
	// Cache is the page cache; MappedFile the mapped file pages;
	// ActiveFile and InactiveFile the page cache's two LRU lists;
	// KernelMemory the kernel memory charged (v1: kmem, v2: "kernel",
	// kernel 5.18 on).
	Cache, MappedFile, ActiveFile, InactiveFile, KernelMemory uint64
	// Processes is the number of processes (pids.current); ProcessLimit
	// pids.max, 0 if none.
	Processes, ProcessLimit uint64
	// SwapUsage is the swap the cgroup uses; SwapLimit its swap limit, 0
	// if none (v2 only: v1 accounts memory and swap together).
	SwapUsage, SwapLimit uint64
	// IO is the cgroup's I/O per block device (v2 only: v2 reads io.stat
	// for its pressure anyway, v1's blkio is not read); nil if none.
	IO []IODevice
	// CPUPressure, MemoryPressure and IOPressure are the cgroup's pressure
	// stall information (v2 with PSI on; nil otherwise).
	CPUPressure, MemoryPressure, IOPressure *Pressure
}

// IODevice is a cgroup's I/O on one block device: bytes and operations
// read and written.
type IODevice struct {
	Major, Minor                         uint64
	ReadBytes, WriteBytes, Reads, Writes uint64
}

// Pressure is the PSI of one resource: the share of time some, or all,
// of the cgroup's tasks were stalled on it.
type Pressure struct {
	Some, Full PressureData
}

// PressureData is one PSI line.
type PressureData struct {
	// TotalNanos is the cumulative stall time.
	TotalNanos uint64
	// Avg10, Avg60 and Avg300 are the stalled share, in percent, over the
	// last 10, 60 and 300 seconds.
	Avg10, Avg60, Avg300 float64
}

// unlimited is how the library reports "max" (no limit).
const unlimited = ^uint64(0)

// Read samples the cgroup whose directories are paths, as libcontainer
// records them: for v1, one absolute directory per controller; for v2, the
// unified directory under the key "". A controller whose directory is
// missing counts as zero.
func Read(paths map[string]string) (Sample, error) {
	if len(paths) == 0 {
		return Sample{}, fmt.Errorf("no cgroup paths")
	}
	// The managers only read here; an empty configuration is enough (the
	// v1 manager wants a non-nil Resources).
	cfg := &cgroups.Cgroup{Resources: &cgroups.Resources{}}
	if unified, ok := paths[""]; ok && len(paths) == 1 {
		m, err := fs2.NewManager(cfg, unified)
		if err != nil {
			return Sample{}, fmt.Errorf("cgroup %s: %w", unified, err)
		}
		// io only for its pressure file: the CRI has no IO counters.
		st, err := m.Stats(&cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO})
		if err != nil {
			return Sample{}, fmt.Errorf("cgroup %s: %w", unified, err)
		}
		return fromV2(st), nil
	}
	m, err := fs.NewManager(cfg, paths)
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", paths["memory"], err)
	}
	st, err := m.Stats(&cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids})
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", paths["memory"], err)
	}
	return fromV1(st), nil
}

func fromV1(st *cgroups.Stats) Sample {
	mem := st.MemoryStats
	s := Sample{
		MemoryUsage:     mem.Usage.Usage,
		RSS:             mem.Stats["total_rss"],
		PageFaults:      mem.Stats["total_pgfault"],
		MajorPageFaults: mem.Stats["total_pgmajfault"],
		MemoryMaxUsage:  mem.Usage.MaxUsage,
		MemoryFailcnt:   mem.Usage.Failcnt,
		Cache:           mem.Stats["total_cache"],
		MappedFile:      mem.Stats["total_mapped_file"],
		ActiveFile:      mem.Stats["total_active_file"],
		InactiveFile:    mem.Stats["total_inactive_file"],
		KernelMemory:    mem.KernelUsage.Usage,
	}
	s.setCPUAndPids(st)
	s.WorkingSet = workingSet(s.MemoryUsage, mem.Stats["total_inactive_file"])
	// v1 reports no limit as a huge page-aligned number, not "max".
	if l := mem.Usage.Limit; l != unlimited && l < 1<<62 {
		s.MemoryLimit = l
	}
	return s
}

func fromV2(st *cgroups.Stats) Sample {
	mem := st.MemoryStats
	s := Sample{
		MemoryUsage:     mem.Usage.Usage,
		RSS:             mem.Stats["anon"],
		PageFaults:      mem.Stats["pgfault"],
		MajorPageFaults: mem.Stats["pgmajfault"],
		MemoryMaxUsage:  mem.Usage.MaxUsage,
		Cache:           mem.Stats["file"],
		MappedFile:      mem.Stats["file_mapped"],
		ActiveFile:      mem.Stats["active_file"],
		InactiveFile:    mem.Stats["inactive_file"],
		KernelMemory:    mem.Stats["kernel"],
		SwapUsage:       mem.SwapOnlyUsage.Usage,
		CPUPressure:     pressure(st.CpuStats.PSI),
		MemoryPressure:  pressure(mem.PSI),
		IOPressure:      pressure(st.BlkioStats.PSI),
	}
	s.setCPUAndPids(st)
	s.IO = ioDevices(st.BlkioStats)
	s.WorkingSet = workingSet(s.MemoryUsage, mem.Stats["inactive_file"])
	if l := mem.Usage.Limit; l != unlimited {
		s.MemoryLimit = l
	}
	if l := mem.SwapOnlyUsage.Limit; l != unlimited {
		s.SwapLimit = l
	}
	return s
}

// setCPUAndPids copies what v1 and v2 report alike (the library reads
// both in nanoseconds).
func (s *Sample) setCPUAndPids(st *cgroups.Stats) {
	cpu := st.CpuStats
	s.CPUUsageNanos = cpu.CpuUsage.TotalUsage
	s.CPUUserNanos = cpu.CpuUsage.UsageInUsermode
	s.CPUSystemNanos = cpu.CpuUsage.UsageInKernelmode
	s.CFSPeriods = cpu.ThrottlingData.Periods
	s.CFSThrottledPeriods = cpu.ThrottlingData.ThrottledPeriods
	s.CFSThrottledNanos = cpu.ThrottlingData.ThrottledTime
	s.Processes = st.PidsStats.Current
	s.ProcessLimit = st.PidsStats.Limit // the library reads "max" as 0
}

// ioDevices gathers the library's io.stat tables (bytes and operations,
// each split by Read and Write as v1's blkio files are) per device, in the
// order io.stat lists them.
func ioDevices(b cgroups.BlkioStats) []IODevice {
	var out []IODevice
	index := map[[2]uint64]int{}
	add := func(entries []cgroups.BlkioStatEntry, read, write func(d *IODevice) *uint64) {
		for _, e := range entries {
			k := [2]uint64{e.Major, e.Minor}
			i, ok := index[k]
			if !ok {
				i = len(out)
				index[k] = i
				out = append(out, IODevice{Major: e.Major, Minor: e.Minor})
			}
			switch e.Op {
			case "Read":
				*read(&out[i]) = e.Value
			case "Write":
				*write(&out[i]) = e.Value
			}
		}
	}
	add(b.IoServiceBytesRecursive, func(d *IODevice) *uint64 { return &d.ReadBytes }, func(d *IODevice) *uint64 { return &d.WriteBytes })
	add(b.IoServicedRecursive, func(d *IODevice) *uint64 { return &d.Reads }, func(d *IODevice) *uint64 { return &d.Writes })
	// The library lists v2's io.stat devices in map order: sorted, the
	// metrics list them the same way at every scrape.
	slices.SortFunc(out, func(a, b IODevice) int {
		return cmp.Or(cmp.Compare(a.Major, b.Major), cmp.Compare(a.Minor, b.Minor))
	})
	return out
}

// workingSet is kubelet's (cAdvisor's) working set: usage less the
// inactive file pages, which the kernel reclaims first; never negative.
func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile >= usage {
		return 0
	}
	return usage - inactiveFile
}

// pressure converts the library's PSI: the kernel counts stall time in
// microseconds (Documentation/accounting/psi.rst), the CRI in nanoseconds.
func pressure(p *cgroups.PSIStats) *Pressure {
	if p == nil {
		return nil
	}
	conv := func(d cgroups.PSIData) PressureData {
		return PressureData{TotalNanos: d.Total * 1000, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &Pressure{Some: conv(p.Some), Full: conv(p.Full)}
}

// Layout names the directories of the cgroup at cgroupsPath (relative to
// each hierarchy's root, as the cgroupfs driver lays containers out) under
// the hierarchies mounted at root. It is the fallback for containers whose
// shim did not record where libcontainer put them. unified says whether
// root holds the v2 unified hierarchy alone.
func Layout(root, cgroupsPath string, unified bool) map[string]string {
	if unified {
		return map[string]string{"": filepath.Join(root, cgroupsPath)}
	}
	return map[string]string{
		"cpuacct": filepath.Join(root, "cpuacct", cgroupsPath),
		"memory":  filepath.Join(root, "memory", cgroupsPath),
		"pids":    filepath.Join(root, "pids", cgroupsPath),
	}
}
