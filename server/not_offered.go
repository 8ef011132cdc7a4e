package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// CheckpointPod is not offered: crib checkpoints containers one at a time
// (CheckpointContainer, kubelet's checkpoint API).
func (s *Server) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	return nil, errdefs.Unimplemented("cannot checkpoint pod %s: crib checkpoints single containers (CheckpointContainer), not whole pods", req.GetPodSandboxId())
}

// RestorePod is not offered: crib writes checkpoints, it does not restore
// them yet.
func (s *Server) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	return nil, errdefs.Unimplemented("cannot restore a pod: crib writes container checkpoints (CheckpointContainer) but does not restore them yet")
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
