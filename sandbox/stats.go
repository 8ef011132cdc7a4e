package sandbox

import (
	"sync"
	"time"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
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
	return v, m.sample(v), nil
}

func (m *Manager) sample(v ContainerView) ContainerStats {
	st := ContainerStats{Timestamp: time.Now(), Sample: m.readCgroup(v.ID, v.Shim.CgroupPaths, v.CgroupsPath)}
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

// readCgroup samples a container's cgroup: where its shim recorded that
// libcontainer put it (right under either cgroup driver), or, for a
// container whose shim predates that record, where the cgroupfs driver
// puts cgroupsPath. A cgroup that cannot be read (the container is being
// removed) reads as zeros.
func (m *Manager) readCgroup(id string, paths map[string]string, cgroupsPath string) cgstats.Sample {
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

// pauseCgroupPaths are the pause container's cgroup directories as the
// pod's shim recorded them (nil if it has not).
func pauseCgroupPaths(rec *state.Sandbox) map[string]string {
	var st shimapi.State
	if err := state.ReadJSON(shimStatePath(rec.ShimDir, rec.ID), &st); err != nil {
		return nil
	}
	return st.CgroupPaths
}
