package server

import (
	"errors"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/sandbox"
)

var eventTypes = map[sandbox.EventType]runtimeapi.ContainerEventType{
	sandbox.EventCreated: runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	sandbox.EventStarted: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	sandbox.EventStopped: runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	sandbox.EventDeleted: runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// GetContainerEvents streams container lifecycle events with the pod's and
// the container's status at the time of sending, for kubelet's evented
// PLEG. A reader that falls behind loses events rather than stall cribd.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	events, cancel := s.opts.Sandboxes.SubscribeEvents()
	defer cancel()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			resp := &runtimeapi.ContainerEventResponse{
				ContainerId:        ev.ContainerID,
				ContainerEventType: eventTypes[ev.Type],
				CreatedAt:          ev.At.UnixNano(),
			}
			if pod, err := s.opts.Sandboxes.Get(ev.PodID); err == nil {
				resp.PodSandboxStatus = podStatus(pod)
			}
			for _, c := range s.opts.Sandboxes.Containers(sandbox.ContainerFilter{PodID: ev.PodID}) {
				resp.ContainersStatuses = append(resp.ContainersStatuses, containerStatus(c))
			}
			if err := stream.Send(resp); err != nil {
				if errors.Is(err, ctx.Err()) {
					return nil
				}
				return errdefs.Unavailable("send container event: %v", err)
			}
		}
	}
}
