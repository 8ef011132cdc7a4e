package sandbox

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cgroupV1Root is where the v1 hierarchies are mounted.
const cgroupV1Root = "/sys/fs/cgroup"

// ContainerStats is one sample of a container's resource use.
type ContainerStats struct {
	Timestamp time.Time
	// CPUUsageNanos is cumulative CPU time; NanoCores the rate since the
	// previous sample (0 on the first).
	CPUUsageNanos uint64
	NanoCores     uint64
	// Memory: usage, working set (usage less inactive file pages), RSS and
	// page faults, as kubelet reads them.
	MemoryUsage, WorkingSet, RSS, PageFaults, MajorPageFaults uint64
}

// cpuSamples remembers the last CPU sample per container, for NanoCores.
type cpuSamples struct {
	mu   sync.Mutex
	last map[string]cpuSample
}

type cpuSample struct {
	at    time.Time
	usage uint64
}

// ContainerStats samples a container's cgroup.
func (m *Manager) ContainerStats(id string) (ContainerView, ContainerStats, error) {
	v, err := m.Container(id)
	if err != nil {
		return ContainerView{}, ContainerStats{}, err
	}
	return v, m.sample(v), nil
}

func (m *Manager) sample(v ContainerView) ContainerStats {
	st := ContainerStats{Timestamp: time.Now()}
	cg := v.CgroupsPath
	if cg == "" {
		return st
	}
	st.CPUUsageNanos = readUint(filepath.Join(cgroupV1Root, "cpuacct", cg, "cpuacct.usage"))
	mem := filepath.Join(cgroupV1Root, "memory", cg)
	st.MemoryUsage = readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	stat := readKeyed(filepath.Join(mem, "memory.stat"))
	st.RSS = stat["total_rss"]
	st.PageFaults = stat["total_pgfault"]
	st.MajorPageFaults = stat["total_pgmajfault"]
	st.WorkingSet = st.MemoryUsage
	if inactive := stat["total_inactive_file"]; inactive < st.WorkingSet {
		st.WorkingSet -= inactive
	} else {
		st.WorkingSet = 0
	}
	m.cpu.mu.Lock()
	if prev, ok := m.cpu.last[v.ID]; ok && st.CPUUsageNanos >= prev.usage {
		if dt := st.Timestamp.Sub(prev.at); dt > 0 {
			st.NanoCores = uint64(float64(st.CPUUsageNanos-prev.usage) / dt.Seconds())
		}
	}
	m.cpu.last[v.ID] = cpuSample{at: st.Timestamp, usage: st.CPUUsageNanos}
	m.cpu.mu.Unlock()
	return st
}

// forgetStats drops a removed container's CPU sample.
func (m *Manager) forgetStats(id string) {
	m.cpu.mu.Lock()
	delete(m.cpu.last, id)
	m.cpu.mu.Unlock()
}

func readUint(path string) uint64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return v
}

// readKeyed reads a "key value" per line file such as memory.stat.
func readKeyed(path string) map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}
