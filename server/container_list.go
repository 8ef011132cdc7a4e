package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists app containers. crib cannot create any yet
// (CreateContainer answers Unimplemented), so the list is truthfully empty;
// kubelet and `crictl rmi --prune` need the call to answer.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{}, nil
}
