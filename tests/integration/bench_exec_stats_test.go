//go:build integration && bench

package integration

// The exec and stats benchmark (`make bench`): the round trip of a non-TTY
// `crictl exec` (Exec, then the SPDY stream to cribd's streaming server,
// the process in the container, its exit code back), and
// ListContainerStats and ListPodSandboxStats with 50 containers running,
// each in a pod of its own as kubelet would have them. They report; they
// assert nothing about speed.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	benchExecs      = 50
	benchStatsCtrs  = 50
	benchStatsCalls = 50
)

// TestBenchExec times `crictl exec ID true` (no -t, no -i, no -s).
func TestBenchExec(t *testing.T) {
	h, podID, pod := containerPod(t)
	id := h.CreateContainer(podID, shellContainer("exec", "exec sleep 3600"), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")

	for i := 0; i < benchWarmup; i++ {
		h.Crictl("exec", id, "true")
	}
	var took []time.Duration
	for i := 0; i < benchExecs; i++ {
		begin := time.Now()
		h.Crictl("exec", id, "true")
		took = append(took, time.Since(begin))
	}
	// What crictl itself costs: a process that makes one unary call.
	var base []time.Duration
	for i := 0; i < benchExecs; i++ {
		begin := time.Now()
		h.Crictl("version")
		base = append(base, time.Since(begin))
	}
	benchReport(fmt.Sprintf("crictl exec true, non-TTY, whole crictl process (n=%d): p50 %s  p99 %s; crictl version for comparison: p50 %s\n",
		len(took), pct(took, 50), pct(took, 99), pct(base, 50)))
}

// TestBenchContainerStats times ListContainerStats and ListPodSandboxStats
// (no filter) with 50 pods of one running container each.
func TestBenchContainerStats(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	c := h.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := func(i int) error {
		podCfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("stats-%d", i), Namespace: "bench", Uid: fmt.Sprintf("s-%d", i)},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{},
		}
		_, _, err := startSleeper(ctx, c, podCfg)
		return err
	}
	// Five at a time: quicker than one by one, and gentle on a shared
	// two-core machine. The harness removes the pods at the end.
	sem := make(chan struct{}, 5)
	var wg sync.WaitGroup
	errs := make(chan error, benchStatsCtrs)
	for i := 0; i < benchStatsCtrs; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := start(i); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v\n%s", err, tail(h.Log(), 30))
	}

	running := runtimeapi.ContainerState_CONTAINER_RUNNING
	list, err := c.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: running},
	}})
	if err != nil || len(list.Containers) != benchStatsCtrs {
		t.Fatalf("ListContainers running: %d containers, err %v; want %d", len(list.GetContainers()), err, benchStatsCtrs)
	}

	measure := func(what string, call func() (int, error)) (p50, p99 time.Duration) {
		t.Helper()
		var took []time.Duration
		for i := 0; i < benchWarmup+benchStatsCalls; i++ {
			begin := time.Now()
			n, err := call()
			d := time.Since(begin)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if n != benchStatsCtrs {
				t.Fatalf("%s: %d entries, want %d", what, n, benchStatsCtrs)
			}
			if i >= benchWarmup {
				took = append(took, d)
			}
		}
		return pct(took, 50), pct(took, 99)
	}
	ctrP50, ctrP99 := measure("ListContainerStats", func() (int, error) {
		r, err := c.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
		return len(r.GetStats()), err
	})
	podP50, podP99 := measure("ListPodSandboxStats", func() (int, error) {
		r, err := c.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
		return len(r.GetStats()), err
	})
	benchReport(fmt.Sprintf(`ListContainerStats, %d running containers (n=%d): p50 %s  p99 %s
ListPodSandboxStats, %d pods of one container (n=%d): p50 %s  p99 %s
`, benchStatsCtrs, benchStatsCalls, ctrP50, ctrP99, benchStatsCtrs, benchStatsCalls, podP50, podP99))
}
