//go:build integration

package integration

import (
	"fmt"
	"sync"
	"testing"

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
