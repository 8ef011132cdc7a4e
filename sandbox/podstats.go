package sandbox

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// PodStats is one sample of a pod's resource use: the sums over its pause
// and app containers' cgroups, its network interfaces, its containers.
type PodStats struct {
	Timestamp     time.Time
	CPUUsageNanos uint64
	MemoryUsage   uint64
	WorkingSet    uint64
	RSS           uint64
	Processes     uint64
	Interfaces    []InterfaceStats
	Containers    []ContainerStatsView
}

// InterfaceStats are one pod interface's counters.
type InterfaceStats struct {
	Name                                 string
	RxBytes, RxErrors, TxBytes, TxErrors uint64
}

// ContainerStatsView pairs a container with its sample.
type ContainerStatsView struct {
	View  ContainerView
	Stats ContainerStats
}

// PodStats samples pod id.
func (m *Manager) PodStats(id string) (View, PodStats, error) {
	v, err := m.Get(id)
	if err != nil {
		return View{}, PodStats{}, err
	}
	st := PodStats{Timestamp: time.Now()}
	cgroups := []string{v.CgroupsPath}
	for _, c := range m.Containers(ContainerFilter{PodID: v.ID}) {
		cs := m.sample(c)
		st.Containers = append(st.Containers, ContainerStatsView{View: c, Stats: cs})
		if c.CgroupsPath != "" {
			cgroups = append(cgroups, c.CgroupsPath)
		}
	}
	for _, cg := range cgroups {
		st.CPUUsageNanos += readUint(filepath.Join(cgroupV1Root, "cpuacct", cg, "cpuacct.usage"))
		mem := filepath.Join(cgroupV1Root, "memory", cg)
		usage := readUint(filepath.Join(mem, "memory.usage_in_bytes"))
		stat := readKeyed(filepath.Join(mem, "memory.stat"))
		st.MemoryUsage += usage
		st.RSS += stat["total_rss"]
		if inactive := stat["total_inactive_file"]; inactive < usage {
			st.WorkingSet += usage - inactive
		}
		st.Processes += readUint(filepath.Join(cgroupV1Root, "pids", cg, "pids.current"))
	}
	if v.NetNSPath != "" && v.Ready {
		ifs, err := podInterfaces(v.NetNSPath)
		if err != nil {
			return View{}, PodStats{}, fmt.Errorf("pod %s network stats: %w", v.ID, err)
		}
		st.Interfaces = ifs
	}
	return v, st, nil
}

// podInterfaces reads the counters of every interface but lo in the
// network namespace pinned at path, through a netlink socket opened there.
func podInterfaces(path string) ([]InterfaceStats, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, err
	}
	var out []InterfaceStats
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" || a.Statistics == nil {
			continue
		}
		out = append(out, InterfaceStats{
			Name: a.Name, RxBytes: a.Statistics.RxBytes, RxErrors: a.Statistics.RxErrors,
			TxBytes: a.Statistics.TxBytes, TxErrors: a.Statistics.TxErrors,
		})
	}
	return out, nil
}
