//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const writerManifest = `apiVersion: v1
kind: Pod
metadata:
  name: writer
  namespace: default
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: writer
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; dd if=/dev/zero of=/written bs=1M count=8 && sync; while true; do sleep 1; done"]
`

// TestCRIStatsAndMetrics: kubelet with PodAndContainerStatsFromCRI (beta
// in 1.37, off by default) takes every pod and container stat from crib:
// its summary API shows the container's rootfs (crib's writable layer)
// grown by the 8 MiB the container wrote, and /metrics/cadvisor, served
// from ListPodSandboxMetrics, has the container's CPU, memory and
// filesystem series and the pod's network series.
func TestCRIStatsAndMetrics(t *testing.T) {
	e := startEnv(t)
	k := e.Kubelet
	k.Stop()
	cfg, err := os.ReadFile(k.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	gated := strings.Replace(string(cfg), "featureGates:\n", "featureGates:\n  PodAndContainerStatsFromCRI: true\n", 1)
	if err := os.WriteFile(k.ConfigPath, []byte(gated), 0o644); err != nil {
		t.Fatal(err)
	}
	k.Start()
	k.WriteManifest("writer", writerManifest)
	eventually(t, 120*time.Second, "writer Running", func() (bool, string) {
		p, ok, err := k.Pod("writer")
		if err != nil || !ok {
			return false, fmt.Sprintf("listed %v, %v", ok, err)
		}
		return p.Status.Phase == "Running", p.Status.Phase
	})

	eventually(t, 90*time.Second, "the summary's rootfs of writer at 8 MiB or more", func() (bool, string) {
		var summary struct {
			Pods []struct {
				PodRef struct {
					Name string `json:"name"`
				} `json:"podRef"`
				Containers []struct {
					Name   string `json:"name"`
					Rootfs *struct {
						UsedBytes  *uint64 `json:"usedBytes"`
						InodesUsed *uint64 `json:"inodesUsed"`
					} `json:"rootfs"`
				} `json:"containers"`
			} `json:"pods"`
		}
		b, err := k.get("/stats/summary")
		if err != nil {
			return false, err.Error()
		}
		if err := json.Unmarshal(b, &summary); err != nil {
			return false, fmt.Sprintf("%v: %.300s", err, b)
		}
		for _, p := range summary.Pods {
			for _, c := range p.Containers {
				if p.PodRef.Name == "writer-"+k.NodeName && c.Name == "writer" && c.Rootfs != nil && c.Rootfs.UsedBytes != nil && c.Rootfs.InodesUsed != nil {
					return *c.Rootfs.UsedBytes >= 8<<20 && *c.Rootfs.InodesUsed > 0, fmt.Sprintf("rootfs used %d, inodes %d", *c.Rootfs.UsedBytes, *c.Rootfs.InodesUsed)
				}
			}
		}
		return false, fmt.Sprintf("no rootfs for writer in %.500s", b)
	})

	eventually(t, 60*time.Second, "/metrics/cadvisor from crib's CRI metrics", func() (bool, string) {
		b, err := k.get("/metrics/cadvisor")
		if err != nil {
			return false, err.Error()
		}
		text := string(b)
		var missing []string
		for _, m := range []struct {
			name, container string
			min             float64
		}{
			{"container_cpu_usage_seconds_total", "writer", 0},
			{"container_memory_working_set_bytes", "writer", 1},
			{"container_fs_usage_bytes", "writer", 8 << 20},
			{"container_network_receive_packets_total", "", 0},
		} {
			v, ok := promValue(text, m.name, m.container, "writer-"+k.NodeName)
			if !ok || v < m.min {
				missing = append(missing, fmt.Sprintf("%s{container=%q} = %v (found %v), want >= %v", m.name, m.container, v, ok, m.min))
			}
		}
		return len(missing) == 0, strings.Join(missing, "; ")
	})
	removeStaticPod(t, e, "writer")
}

// get reads path from kubelet's read-only port.
func (k *Kubelet) get(path string) ([]byte, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", k.ReadOnlyPort, path))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %.300s", path, resp.Status, b)
	}
	return b, nil
}

// promValue finds the sample of metric name with the given container and
// pod labels in a Prometheus text exposition.
func promValue(text, name, container, pod string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)`)
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		labels := m[1]
		if !strings.Contains(labels, `container="`+container+`"`) || !strings.Contains(labels, `pod="`+pod+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		return v, err == nil
	}
	return 0, false
}
