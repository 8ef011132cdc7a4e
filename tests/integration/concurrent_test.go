//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestConcurrentPods: pods run, stopped and removed in parallel, as kubelet
// does, each get their own ID and IP and leave nothing behind.
func TestConcurrentPods(t *testing.T) {
	const n = 8
	h := start(t, Options{})
	warm := h.RunPod(podConfig("warm"))
	h.Crictl("stopp", warm)
	h.Crictl("rmp", warm)
	before := h.snapshot()

	c := h.client()
	ctx := ctx30(t)
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("conc-%d-%s", i, randomHex(3))
			resp, err := c.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Uid: "uid-" + name, Namespace: "crib-it"},
				Linux:    &runtimeapi.LinuxPodSandboxConfig{},
			}})
			ids[i], errs[i] = resp.GetPodSandboxId(), err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("RunPodSandbox %d: %v", i, err)
		}
	}
	seenIP := map[string]string{}
	for _, id := range ids {
		if id == "" {
			continue
		}
		st := h.Inspect(id)
		if st.Status.State != "SANDBOX_READY" {
			t.Errorf("pod %s: state %s, want SANDBOX_READY", id, st.Status.State)
		}
		ip := st.Status.Network.IP
		if other, dup := seenIP[ip]; dup || ip == "" {
			t.Errorf("pod %s: IP %q (also pod %q)", id, ip, other)
		}
		seenIP[ip] = id
	}

	errs = make([]error, n)
	for i, id := range ids {
		if id == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				errs[i] = fmt.Errorf("StopPodSandbox %s: %w", id, err)
				return
			}
			if _, err := c.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				errs[i] = fmt.Errorf("RemovePodSandbox %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if pods := h.Pods(); len(pods) != 0 {
		t.Errorf("crictl pods lists %d pods after all were removed", len(pods))
	}
	h.checkLeaks(t, before, "after parallel stop and remove")
}

// TestReadsDoNotWaitForLifecycle: while a StopContainer waits out a
// container's grace period (it ignores SIGTERM) — holding that container
// for as long as the grace lasts — the calls kubelet makes every second
// to learn the node's state still answer: ListPodSandbox, ListContainers,
// PodSandboxStatus, ContainerStatus and ListContainerStats. Each gets 20 s
// of the stop's 120; before the records were published apart from the
// lifecycle lock, each waited for the whole grace period.
func TestReadsDoNotWaitForLifecycle(t *testing.T) {
	h, podID, pod := containerPod(t)
	c := h.client()
	id := h.CreateContainer(podID, shellContainer("stubborn", "trap 'echo got TERM' TERM; echo ready; while true; do sleep 0.1; done"), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")

	stopCtx, cancelStop := context.WithCancel(context.Background())
	defer cancelStop()
	stopped := make(chan error, 1)
	go func() {
		_, err := c.StopContainer(stopCtx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 120})
		stopped <- err
	}()
	// The shell logs the signal it ignored: from then on the stop is
	// inside its grace period. (The file, not crictl logs: that asks for
	// ContainerStatus, one of the calls under test.)
	logFile := filepath.Join(pod["log_directory"].(string), "stubborn.log")
	eventually(t, 20*time.Second, "the container's SIGTERM in its log", func() (bool, string) {
		out, _ := os.ReadFile(logFile)
		return strings.Contains(string(out), "got TERM"), string(out)
	})

	for _, call := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"ListPodSandbox", func(ctx context.Context) error {
			_, err := c.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err
		}},
		{"PodSandboxStatus", func(ctx context.Context) error {
			_, err := c.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
			return err
		}},
		{"ListContainers", func(ctx context.Context) error {
			_, err := c.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			return err
		}},
		{"ContainerStatus", func(ctx context.Context) error {
			resp, err := c.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
			if err == nil && resp.GetStatus().GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
				return fmt.Errorf("state %s during the grace period, want CONTAINER_RUNNING", resp.GetStatus().GetState())
			}
			return err
		}},
		{"ListContainerStats", func(ctx context.Context) error {
			_, err := c.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
			return err
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := call.do(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s while StopContainer waits out the grace period: %v", call.name, err)
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("StopContainer with a 120 s grace period returned before the reads were done (%v): the check proved nothing", err)
	default:
	}
	cancelStop()
	<-stopped
	h.Crictl("rmp", "-f", podID)
}
