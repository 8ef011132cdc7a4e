//go:build integration

package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerEvents: create, start, exit and remove are seen in order on
// the GetContainerEvents stream, with the container's status.
func TestContainerEvents(t *testing.T) {
	h, podID, pod := containerPod(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := h.client().GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		typ   runtimeapi.ContainerEventType
		state runtimeapi.ContainerState
	}
	got := make(chan seen, 16)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				close(got)
				return
			}
			var state runtimeapi.ContainerState = -1
			for _, c := range ev.GetContainersStatuses() {
				if c.GetId() == ev.GetContainerId() {
					state = c.GetState()
				}
			}
			got <- seen{ev.GetContainerEventType(), state}
		}
	}()
	// The stream is open once cribd logged it; give the subscription a
	// moment by polling the log.
	eventually(t, 10*time.Second, "event stream open", func() (bool, string) {
		return containsLine(h.Log(), "GetContainerEvents"), ""
	})

	id := h.CreateContainer(podID, shellContainer("evt", "sleep 0.2; exit 3"), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_EXITED")
	h.Crictl("rm", id)

	want := []runtimeapi.ContainerEventType{
		runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
		runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
	}
	for i, w := range want {
		select {
		case ev, ok := <-got:
			if !ok {
				t.Fatalf("stream ended before event %d (%s)", i, w)
			}
			if ev.typ != w {
				t.Fatalf("event %d: %s, want %s", i, ev.typ, w)
			}
			if w == runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT && ev.state != runtimeapi.ContainerState_CONTAINER_EXITED {
				t.Errorf("stopped event carries state %v", ev.state)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no event %d (%s) within 20s", i, w)
		}
	}
	cancel()
	h.Crictl("rmp", "-f", podID)
}

func containsLine(log, s string) bool { return strings.Contains(log, s) }
