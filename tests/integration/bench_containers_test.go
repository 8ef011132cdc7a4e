//go:build integration && bench

package integration

// The container benchmark (`make bench`): pod ready (RunPodSandbox +
// CreateContainer + StartContainer of busybox sleep), a burst of 20 pods
// started at once, per-pod memory as PSS with 20 pods running, and ExecSync
// of `true`. It reports; it asserts nothing about speed.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestBenchPodReady(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	c := h.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	startPod := func(i int) (string, string, time.Duration) {
		podCfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("ready-%d", i), Namespace: "bench", Uid: fmt.Sprintf("u-%d", i)},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{},
		}
		begin := time.Now()
		pod, ctr, err := startSleeper(ctx, c, podCfg)
		if err != nil {
			t.Error(err)
		}
		return pod, ctr, time.Since(begin)
	}
	removePod := func(id string) {
		if _, err := c.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	}

	for i := 0; i < benchWarmup; i++ {
		id, _, _ := startPod(-1 - i)
		removePod(id)
	}
	var ready []time.Duration
	for i := 0; i < 50; i++ {
		id, _, took := startPod(i)
		ready = append(ready, took)
		removePod(id)
	}

	idlePSS := pssKiB(h.PID())
	begin := time.Now()
	var wg sync.WaitGroup
	pods := make([]string, benchHeld)
	ctrs := make([]string, benchHeld)
	for i := 0; i < benchHeld; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pods[i], ctrs[i], _ = startPod(1000 + i)
		}()
	}
	wg.Wait()
	burst := time.Since(begin)

	cribdGrowth := pssKiB(h.PID()) - idlePSS
	var shims, pauses int
	shimDirs, _ := filepath.Glob(filepath.Join(h.RunDir, "pods", "*", "shim.pid"))
	for _, f := range shimDirs {
		data, _ := os.ReadFile(f)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		shims += pssKiB(pid)
	}
	for _, id := range pods {
		if id != "" {
			pauses += pssKiB(h.PausePID(id))
		}
	}

	var execs []time.Duration
	for i := 0; i < 30 && ctrs[0] != ""; i++ {
		b := time.Now()
		if _, err := c.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctrs[0], Cmd: []string{"true"}, Timeout: 10}); err != nil {
			t.Fatalf("ExecSync: %v", err)
		}
		execs = append(execs, time.Since(b))
	}
	for _, id := range pods {
		if id != "" {
			removePod(id)
		}
	}

	perPod := float64(cribdGrowth+shims) / float64(benchHeld) / 1024
	report := fmt.Sprintf(`Pod ready (RunPodSandbox+CreateContainer+StartContainer, busybox sleep; n=50): p50 %s  p99 %s
%d pods started at once: all Running after %s
Per-pod memory with %d pods (PSS): %.2f MiB (cribd growth %.1f MiB + shims %.1f MiB, over %d pods); pause %.0f KiB each
ExecSync true (n=%d): p50 %s  p99 %s
`,
		pct(ready, 50), pct(ready, 99), benchHeld, burst.Round(time.Millisecond),
		benchHeld, perPod, float64(cribdGrowth)/1024, float64(shims)/1024, benchHeld, float64(pauses)/float64(benchHeld),
		len(execs), pct(execs, 50), pct(execs, 99))
	benchReport(report)
}

// TestBenchPodReadyUserNS: pod ready (as above) for a pod in a user
// namespace of its own against the same pod in the host's, alternating in
// one cribd, so that the difference is what the user namespace costs: the
// holder process that makes the namespaces, and idmapped layer mounts.
func TestBenchPodReadyUserNS(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	c := h.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 200000, Length: 65536}}
	const n = 30
	var host, own []time.Duration
	for i := -benchWarmup; i < n; i++ {
		for _, inUserNS := range []bool{false, true} {
			podCfg := &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("userns-%d-%v", i, inUserNS), Namespace: "bench", Uid: fmt.Sprintf("u-%d-%v", i, inUserNS)},
				Linux:    &runtimeapi.LinuxPodSandboxConfig{},
			}
			if inUserNS {
				podCfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
					UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids},
				}}
			}
			begin := time.Now()
			pod, _, err := startSleeper(ctx, c, podCfg)
			took := time.Since(begin)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
				t.Fatalf("RemovePodSandbox: %v", err)
			}
			switch {
			case i < 0:
			case inUserNS:
				own = append(own, took)
			default:
				host = append(host, took)
			}
		}
	}
	benchReport(fmt.Sprintf("Pod ready, own user namespace vs the host's (alternating, n=%d each): p50 %s vs %s, p99 %s vs %s\n",
		n, pct(own, 50), pct(host, 50), pct(own, 99), pct(host, 99)))
}

// pssKiB reads a process's proportional set size.
func pssKiB(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

// startSleeper runs a pod from podCfg with one busybox `sleep 3600`
// container, started; it returns what it made so far even on error.
func startSleeper(ctx context.Context, c runtimeapi.RuntimeServiceClient, podCfg *runtimeapi.PodSandboxConfig) (podID, ctrID string, err error) {
	pod, err := c.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
	if err != nil {
		return "", "", fmt.Errorf("RunPodSandbox %s: %w", podCfg.Metadata.Name, err)
	}
	ctr, err := c.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.PodSandboxId, SandboxConfig: podCfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Command:  []string{"sleep", "3600"},
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
	})
	if err != nil {
		return pod.PodSandboxId, "", fmt.Errorf("CreateContainer in %s: %w", podCfg.Metadata.Name, err)
	}
	if _, err := c.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
		return pod.PodSandboxId, ctr.ContainerId, fmt.Errorf("StartContainer in %s: %w", podCfg.Metadata.Name, err)
	}
	return pod.PodSandboxId, ctr.ContainerId, nil
}
