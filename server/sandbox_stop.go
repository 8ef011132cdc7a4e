package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopPodSandbox stops a pod's processes and releases its network and
// namespaces. It is idempotent and succeeds for unknown IDs.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	stop := func() error { return s.opts.Sandboxes.Stop(ctx, req.GetPodSandboxId()) }
	if s.opts.NRI != nil {
		if err := s.opts.NRI.StopPodSandbox(ctx, req.GetPodSandboxId(), stop); err != nil {
			return nil, err
		}
	} else if err := stop(); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox stops a pod if needed and deletes everything crib keeps
// for it. It is idempotent and succeeds for unknown IDs.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	remove := func() error { return s.opts.Sandboxes.Remove(ctx, req.GetPodSandboxId()) }
	if s.opts.NRI != nil {
		if err := s.opts.NRI.RemovePodSandbox(ctx, req.GetPodSandboxId(), remove); err != nil {
			return nil, err
		}
	} else if err := remove(); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
