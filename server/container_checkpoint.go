package server

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// CheckpointContainer writes a checkpoint archive of a running container
// (CRIU's dump of its processes, its metadata, spec and writable layer) to
// the location kubelet's checkpoint API gives, leaving it running. A
// positive timeout (seconds) bounds the dump. A node without CRIU answers
// FailedPrecondition, naming it.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, errdefs.InvalidArgument("container_id is empty")
	}
	if t := req.GetTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Second)
		defer cancel()
	}
	if err := s.opts.Sandboxes.Checkpoint(ctx, req.GetContainerId(), req.GetLocation()); err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointContainerResponse{}, nil
}
