//go:build integration

package integration

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statsJSON is the part of `crictl stats -o json` the writable layer test
// reads (uint64 values are strings in protobuf's JSON).
type statsJSON struct {
	Stats []struct {
		Attributes struct {
			ID string `json:"id"`
		} `json:"attributes"`
		WritableLayer *struct {
			FsID struct {
				Mountpoint string `json:"mountpoint"`
			} `json:"fsId"`
			UsedBytes  struct{ Value string } `json:"usedBytes"`
			InodesUsed struct{ Value string } `json:"inodesUsed"`
		} `json:"writableLayer"`
	} `json:"stats"`
}

// writableLayer is container id's writable layer as `crictl stats` shows
// it: used bytes, inodes, mountpoint; ok false while it has none.
func (h *Harness) writableLayer(id string) (used, inodes uint64, mountpoint string, ok bool) {
	var st statsJSON
	h.CrictlJSON(&st, "stats", "-o", "json", "--id", id)
	for _, s := range st.Stats {
		if s.Attributes.ID != id || s.WritableLayer == nil {
			continue
		}
		used, _ = strconv.ParseUint(s.WritableLayer.UsedBytes.Value, 10, 64)
		inodes, _ = strconv.ParseUint(s.WritableLayer.InodesUsed.Value, 10, 64)
		return used, inodes, s.WritableLayer.FsID.Mountpoint, true
	}
	return 0, 0, "", false
}

// TestWritableLayerStats: a container's writable layer shows in crictl
// stats from its first measurement on, grows by at least the size of a
// file written in the container once the cache refreshes (10 s), shows in
// ListPodSandboxStats' container entries too, and the container file
// system of imagefsinfo counts it.
func TestWritableLayerStats(t *testing.T) {
	h, podID, pod := containerPod(t)
	id := h.CreateContainer(podID, shellContainer("writer", "exec sleep 600"), pod)
	h.Crictl("start", id)

	var base, baseInodes uint64
	eventually(t, 20*time.Second, "a first writable layer measurement", func() (bool, string) {
		used, inodes, mnt, ok := h.writableLayer(id)
		if !ok {
			return false, "no writableLayer"
		}
		if want := filepath.Join(h.RootDir, "storage"); mnt != want {
			t.Fatalf("writable layer mountpoint %q, want the image store's %q", mnt, want)
		}
		base, baseInodes = used, inodes
		return inodes > 0, fmt.Sprintf("used %d, inodes %d", used, inodes)
	})

	const size = 8 << 20
	h.Crictl("exec", id, "/bin/sh", "-c", fmt.Sprintf("dd if=/dev/zero of=/written bs=1M count=%d && sync", size>>20))
	eventually(t, 40*time.Second, "the writable layer grown by the file written", func() (bool, string) {
		used, inodes, _, _ := h.writableLayer(id)
		return used >= base+size && inodes > baseInodes, fmt.Sprintf("used %d (was %d), inodes %d (was %d)", used, base, inodes, baseInodes)
	})

	c := h.client()
	resp, err := c.ListPodSandboxStats(ctx30(t), &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: podID}})
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.GetStats(); len(ps) != 1 || len(ps[0].GetLinux().GetContainers()) != 1 ||
		ps[0].GetLinux().GetContainers()[0].GetWritableLayer().GetUsedBytes().GetValue() < base+size {
		t.Errorf("ListPodSandboxStats' container entry has no grown writable layer: %v", ps)
	}

	var fsinfo struct {
		Status struct {
			ContainerFilesystems []struct {
				UsedBytes struct{ Value string } `json:"usedBytes"`
			} `json:"containerFilesystems"`
		} `json:"status"`
	}
	eventually(t, 20*time.Second, "imagefsinfo's container file system counting the file", func() (bool, string) {
		h.CrictlJSON(&fsinfo, "imagefsinfo", "-o", "json")
		if len(fsinfo.Status.ContainerFilesystems) != 1 {
			return false, fmt.Sprintf("%+v", fsinfo)
		}
		used, _ := strconv.ParseUint(fsinfo.Status.ContainerFilesystems[0].UsedBytes.Value, 10, 64)
		return used >= size, fmt.Sprintf("container filesystem used %d", used)
	})
	h.Crictl("rmp", "-f", podID)
}

// TestPodSandboxMetrics: ListMetricDescriptors describes cAdvisor's names;
// ListPodSandboxMetrics (and its stream) gives, for a running pod, the
// container's CPU, memory, processes, spec and writable layer metrics and
// the pod's network counters, each with as many label values as its
// descriptor has keys.
func TestPodSandboxMetrics(t *testing.T) {
	h, podID, pod := containerPod(t)
	cfg := shellContainer("burn", "while :; do :; done")
	cfg["linux"] = map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 << 20}}
	burn := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", burn)
	c := h.client()

	descs, err := c.ListMetricDescriptors(ctx30(t), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range descs.GetDescriptors() {
		keys[d.GetName()] = d.GetLabelKeys()
	}
	for _, name := range []string{
		"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_usage_bytes",
		"container_network_receive_bytes_total", "container_network_transmit_bytes_total", "container_fs_usage_bytes",
		"container_processes", "container_spec_memory_limit_bytes",
	} {
		if _, ok := keys[name]; !ok {
			t.Errorf("ListMetricDescriptors lacks %s", name)
		}
	}

	pingOK(t, "host to pod", pingCmd(h.Inspect(podID).Status.Network.IP))
	// value finds a metric of the pod (container "" for the pod's own)
	// by name, checking every metric's labels against its descriptor.
	value := func(pm *runtimeapi.PodSandboxMetrics, ctr, name string) (uint64, bool) {
		ms := pm.GetMetrics()
		if ctr != "" {
			ms = nil
			for _, cm := range pm.GetContainerMetrics() {
				if cm.GetContainerId() == ctr {
					ms = cm.GetMetrics()
				}
			}
		}
		found, v := false, uint64(0)
		for _, m := range ms {
			if k := keys[m.GetName()]; len(k) != len(m.GetLabelValues()) {
				t.Fatalf("metric %s has label values %v for keys %v", m.GetName(), m.GetLabelValues(), k)
			}
			if i := slices.Index(keys[m.GetName()], "id"); i < 0 || m.GetLabelValues()[i] != orElse(ctr, podID) {
				t.Fatalf("metric %s has labels %v, want id %s", m.GetName(), m.GetLabelValues(), orElse(ctr, podID))
			}
			if m.GetName() == name && !found {
				found, v = true, m.GetValue().GetValue()
			}
		}
		return v, found
	}
	get := func() *runtimeapi.PodSandboxMetrics {
		resp, err := c.ListPodSandboxMetrics(ctx30(t), &runtimeapi.ListPodSandboxMetricsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, pm := range resp.GetPodMetrics() {
			if pm.GetPodSandboxId() == podID {
				return pm
			}
		}
		t.Fatalf("ListPodSandboxMetrics has no pod %s: %v", podID, resp)
		return nil
	}
	eventually(t, 30*time.Second, "the burner's CPU, memory and layer, the pod's traffic", func() (bool, string) {
		pm := get()
		cpu, _ := value(pm, burn, "container_cpu_usage_seconds_total")
		ws, _ := value(pm, burn, "container_memory_working_set_bytes")
		procs, _ := value(pm, burn, "container_processes")
		limit, _ := value(pm, burn, "container_spec_memory_limit_bytes")
		_, fs := value(pm, burn, "container_fs_usage_bytes")
		rx, _ := value(pm, "", "container_network_receive_bytes_total")
		ok := cpu >= 1 && ws > 0 && procs >= 1 && limit == 64<<20 && fs && rx > 0
		return ok, fmt.Sprintf("cpu %d s, working set %d, processes %d, limit %d, fs usage given %v, rx %d", cpu, ws, procs, limit, fs, rx)
	})

	stream, err := c.StreamPodSandboxMetrics(ctx30(t), &runtimeapi.StreamPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var streamed []string
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, pm := range msg.GetPodSandboxMetrics() {
			streamed = append(streamed, pm.GetPodSandboxId())
		}
	}
	if !slices.Equal(streamed, []string{podID}) {
		t.Errorf("StreamPodSandboxMetrics gave pods %v, want [%s]", streamed, podID)
	}

	// A stopped pod is not sampled.
	h.Crictl("stopp", podID)
	resp, err := c.ListPodSandboxMetrics(ctx30(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil || len(resp.GetPodMetrics()) != 0 {
		t.Errorf("after stopp: %v, %v", resp, err)
	}
	h.Crictl("rmp", "-f", podID)
}

// orElse is a if set, else b.
func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
