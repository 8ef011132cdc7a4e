//go:build integration

package integration

import (
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestStats: a container burning CPU shows close to one core; memory grows
// with an allocation; the pod's stats sum its containers and count its
// interface's traffic.
func TestStats(t *testing.T) {
	h, podID, pod := containerPod(t)
	burnCfg := shellContainer("burn", "while :; do :; done")
	burnCfg["linux"] = map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 << 20}}
	burn := h.CreateContainer(podID, burnCfg, pod)
	h.Crictl("start", burn)
	grow := h.CreateContainer(podID, shellContainer("grow", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 && exec sleep 600"), pod)
	h.Crictl("start", grow)
	c := h.client()

	eventually(t, 20*time.Second, "the burner near one core", func() (bool, string) {
		resp, err := c.ContainerStats(ctx30(t), &runtimeapi.ContainerStatsRequest{ContainerId: burn})
		if err != nil {
			return false, err.Error()
		}
		nc := resp.GetStats().GetCpu().GetUsageNanoCores().GetValue()
		return nc > 500_000_000, fmt.Sprintf("%d nano-cores", nc)
	})
	eventually(t, 20*time.Second, "the grower's memory above 32 MiB", func() (bool, string) {
		resp, err := c.ContainerStats(ctx30(t), &runtimeapi.ContainerStatsRequest{ContainerId: grow})
		if err != nil {
			return false, err.Error()
		}
		ws := resp.GetStats().GetMemory().GetWorkingSetBytes().GetValue()
		return ws > 32<<20, fmt.Sprintf("working set %d", ws)
	})
	// The burner's limit leaves it almost all of its 64 MiB available.
	if resp, err := c.ContainerStats(ctx30(t), &runtimeapi.ContainerStatsRequest{ContainerId: burn}); err != nil {
		t.Error(err)
	} else if a := resp.GetStats().GetMemory().GetAvailableBytes(); a == nil || a.GetValue() < 32<<20 || a.GetValue() >= 64<<20 {
		t.Errorf("burner available bytes %v, want below its 64 MiB limit", a)
	}
	// The grower has no memory limit: no available bytes; it faulted its
	// pages in. (PSI and swap are cgroup v2's: the VM lane checks them.)
	if resp, err := c.ContainerStats(ctx30(t), &runtimeapi.ContainerStatsRequest{ContainerId: grow}); err != nil {
		t.Error(err)
	} else if m := resp.GetStats().GetMemory(); m.GetAvailableBytes() != nil || m.GetPageFaults().GetValue() == 0 || m.GetRssBytes().GetValue() == 0 {
		t.Errorf("grower memory stats: %v", m)
	}
	pingOK(t, "host to pod", pingCmd(h.Inspect(podID).Status.Network.IP))
	resp, err := c.PodSandboxStats(ctx30(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.GetStats().GetLinux()
	if n := len(ps.GetContainers()); n != 2 {
		t.Errorf("pod stats list %d containers, want 2", n)
	}
	if ps.GetNetwork().GetDefaultInterface().GetName() != "eth0" || ps.GetNetwork().GetDefaultInterface().GetRxBytes().GetValue() == 0 {
		t.Errorf("pod network stats: %v", ps.GetNetwork())
	}
	if ps.GetMemory().GetWorkingSetBytes().GetValue() < 32<<20 || ps.GetProcess().GetProcessCount().GetValue() < 2 {
		t.Errorf("pod memory %v, processes %v", ps.GetMemory(), ps.GetProcess())
	}
	list, err := c.ListPodSandboxStats(ctx30(t), &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil || len(list.GetStats()) != 1 {
		t.Errorf("ListPodSandboxStats: %v, %d pods", err, len(list.GetStats()))
	}
	h.Crictl("rmp", "-f", podID)
}
