package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// CheckpointContainer is not offered: checkpoints need CRIU.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, checkpointError("container " + req.GetContainerId())
}

// CheckpointPod is not offered: checkpoints need CRIU.
func (s *Server) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	return nil, checkpointError("pod " + req.GetPodSandboxId())
}

// RestorePod is not offered: restores need CRIU.
func (s *Server) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return nil, checkpointError("a pod")
}

func checkpointError(what string) error {
	return errdefs.Unimplemented("cannot checkpoint or restore %s: crib does not support checkpoint/restore (it needs CRIU, which crib does not drive)", what)
}

// UpdatePodSandboxResources accepts a pod's new resources. With the
// cgroupfs driver kubelet writes the pod-level cgroup itself and updates
// each container through UpdateContainerResources, so nothing is left for
// the runtime to change.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if _, err := s.opts.Sandboxes.Get(req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
