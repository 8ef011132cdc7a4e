package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
)

// ListContainers lists containers, filtered by ID (or prefix), pod, state
// and labels.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	filter := sandbox.ContainerFilter{IDPrefix: f.GetId(), PodID: f.GetPodSandboxId(), Labels: f.GetLabelSelector()}
	if st := f.GetState(); st != nil {
		state, ok := containerState(st.GetState())
		if !ok {
			// A state the CRI does not define: no container is in it.
			return &runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{}}, nil
		}
		filter.State = &state
	}
	views := s.opts.Sandboxes.Containers(filter)
	items := make([]*runtimeapi.Container, 0, len(views))
	for _, v := range views {
		items = append(items, &runtimeapi.Container{
			Id:           v.ID,
			PodSandboxId: v.PodID,
			Metadata:     &runtimeapi.ContainerMetadata{Name: v.Name, Attempt: v.Attempt},
			Image:        &runtimeapi.ImageSpec{Image: v.Image, UserSpecifiedImage: v.Image},
			ImageRef:     v.ImageRef,
			ImageId:      v.ImageID,
			State:        criContainerState(v.State()),
			CreatedAt:    v.CreatedAt.UnixNano(),
			Labels:       v.Labels,
			Annotations:  v.Annotations,
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: items}, nil
}

// criContainerState is the CRI's name for a container state.
func criContainerState(s sandbox.ContainerState) runtimeapi.ContainerState {
	switch s {
	case sandbox.ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case sandbox.ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case sandbox.ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// containerState is crib's name for a CRI container state; false for a
// value the CRI does not define.
func containerState(s runtimeapi.ContainerState) (sandbox.ContainerState, bool) {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return sandbox.ContainerCreated, true
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return sandbox.ContainerRunning, true
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return sandbox.ContainerExited, true
	case runtimeapi.ContainerState_CONTAINER_UNKNOWN:
		return sandbox.ContainerUnknown, true
	}
	return sandbox.ContainerUnknown, false
}
