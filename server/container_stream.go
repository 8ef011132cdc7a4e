package server

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// StreamingURLs hands out one-time session URLs of the streaming server
// (server/streaming).
type StreamingURLs interface {
	GetExec(*runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error)
	GetAttach(*runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error)
	GetPortForward(*runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error)
}

// Exec checks that the container runs and returns the URL of a streaming
// exec session.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if s.opts.Streaming == nil {
		return nil, fmt.Errorf("exec: no streaming server: %w", errdefs.ErrUnimplemented)
	}
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.InvalidArgument("cmd is empty")
	}
	if err := s.opts.Sandboxes.CheckContainerRunning(req.GetContainerId()); err != nil {
		return nil, err
	}
	return s.opts.Streaming.GetExec(req)
}

// Attach checks that the container runs and, if stdin is asked for, was
// created with stdin, and returns the URL of a streaming attach session.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if s.opts.Streaming == nil {
		return nil, fmt.Errorf("attach: no streaming server: %w", errdefs.ErrUnimplemented)
	}
	if err := s.opts.Sandboxes.CheckAttach(req.GetContainerId(), req.GetStdin()); err != nil {
		return nil, err
	}
	return s.opts.Streaming.GetAttach(req)
}

// PortForward checks that the pod is ready and returns the URL of a
// streaming port-forward session into its network namespace.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if s.opts.Streaming == nil {
		return nil, fmt.Errorf("port-forward: no streaming server: %w", errdefs.ErrUnimplemented)
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, errdefs.InvalidArgument("port %d is out of range", p)
		}
	}
	if err := s.opts.Sandboxes.CheckPodReady(req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	return s.opts.Streaming.GetPortForward(req)
}
