//go:build integration

package integration

import (
	"errors"
	"io"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestListStreams: the streaming list RPCs answer what the List RPCs do.
func TestListStreams(t *testing.T) {
	h := start(t, Options{})
	a := h.RunPod(podConfig("stream-a"))
	b := h.RunPod(podConfig("stream-b"))
	stream, err := h.client().StreamPodSandboxes(ctx30(t), &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.GetPodSandboxes() {
			seen[p.GetId()] = true
		}
	}
	if !seen[a] || !seen[b] || len(seen) != 2 {
		t.Errorf("StreamPodSandboxes saw %v, want %s and %s", seen, a, b)
	}
	cs, err := h.client().StreamContainers(ctx30(t), &runtimeapi.StreamContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := cs.Recv(); err != nil || len(resp.GetContainers()) != 0 {
		t.Errorf("StreamContainers: %v, %v", resp, err)
	}
	for _, id := range []string{a, b} {
		h.Crictl("rmp", "-f", id)
	}
}
