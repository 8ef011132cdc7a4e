package container

import (
	"sync"
	"time"

	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/sandbox/cgstats"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// ContainerStats is one sample of a container's resource use.
type ContainerStats struct {
	Timestamp time.Time
	// NanoCores is the CPU rate since the previous sample (0 on the first).
	NanoCores uint64
	cgstats.Sample
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
	return v, m.Sample(v), nil
}

// Sample samples container v's cgroup; NanoCores is the CPU rate since the
// previous Sample of it.
func (m *Manager) Sample(v ContainerView) ContainerStats {
	st := ContainerStats{Timestamp: time.Now(), Sample: m.ReadCgroup(v.ID, v.Shim.CgroupPaths, v.CgroupsPath)}
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

// ReadCgroup samples the cgroup of a container, or of a pod's pause
// container (sandbox.PodStats): where its shim recorded that
// libcontainer put it (right under either cgroup driver), or, for a
// container whose shim predates that record, where the cgroupfs driver
// puts cgroupsPath. A cgroup that cannot be read (the container is being
// removed) reads as zeros.
func (m *Manager) ReadCgroup(id string, paths map[string]string, cgroupsPath string) cgstats.Sample {
	if len(paths) == 0 {
		// A shim too old to record its paths: derive them from the
		// record, under either driver (a systemd scope sits below its
		// expanded slice).
		dir, err := cgroup.Dir(cgroupsPath)
		if cgroupsPath == "" || err != nil {
			return cgstats.Sample{}
		}
		paths = cgstats.Layout(cgroupRoot, dir, m.cgroup2)
	}
	s, err := cgstats.Read(paths)
	if err != nil {
		m.opts.Log.WithError(err).WithField("id", id).Debug("cgroup stats")
		return cgstats.Sample{}
	}
	return s
}
