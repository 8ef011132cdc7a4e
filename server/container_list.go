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
		state := st.GetState()
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
			State:        v.CRIState(),
			CreatedAt:    v.CreatedAt.UnixNano(),
			Labels:       v.Labels,
			Annotations:  v.Annotations,
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: items}, nil
}
