package server

import (
	"context"
	"math"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopContainer signals a container and kills it after the timeout
// (seconds; 0 kills at once). It is idempotent.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	timeout := stopTimeout(req.GetTimeout())
	stop := func() error { return s.opts.Sandboxes.StopContainer(ctx, req.GetContainerId(), timeout) }
	if s.opts.NRI != nil {
		if err := s.opts.NRI.StopContainer(ctx, req.GetContainerId(), stop); err != nil {
			return nil, err
		}
	} else if err := stop(); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopTimeout converts StopContainer's timeout in seconds to a duration,
// saturating instead of overflowing: kubelet sends the pod's grace period,
// and a huge one means wait long, not (wrapped negative) kill at once. A
// negative timeout is 0.
func stopTimeout(secs int64) time.Duration {
	switch {
	case secs <= 0:
		return 0
	case secs > int64(math.MaxInt64/time.Second):
		return math.MaxInt64
	}
	return time.Duration(secs) * time.Second
}

// RemoveContainer kills a container if needed and removes it with its
// writable layer. It is idempotent.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	remove := func() error { return s.opts.Sandboxes.RemoveContainer(ctx, req.GetContainerId()) }
	if s.opts.NRI != nil {
		if err := s.opts.NRI.RemoveContainer(ctx, req.GetContainerId(), remove); err != nil {
			return nil, err
		}
	} else if err := remove(); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}
