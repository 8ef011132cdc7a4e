// Package server translates CRI runtime.v1 calls into crib's managers. Each
// RPC lives in its own file and does three things: validate the request,
// call a manager, translate the result. One unary interceptor logs every
// call and maps crib's errors to gRPC status codes, so handlers return
// plain wrapped errors.
package server

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// RuntimeName is what Version reports.
const RuntimeName = "crib"

// NetworkStatus reports whether pod networking is ready, and why not.
type NetworkStatus interface {
	Ready() (bool, string)
}

// Options configures a Server.
type Options struct {
	// Version is crib's version string.
	Version string
	// CgroupDriver is "cgroupfs" or "systemd".
	CgroupDriver string
	Sandboxes    *sandbox.Manager
	Network      NetworkStatus
	// Images serves the CRI ImageService; nil answers Unimplemented.
	Images ImageService
	// Streaming serves Exec and PortForward sessions; nil answers
	// Unimplemented.
	Streaming StreamingURLs
	// RecursiveReadOnlyMounts says the kernel supports recursive read-only
	// bind mounts (reported to kubelet in Status).
	RecursiveReadOnlyMounts bool
	// UserNamespaces says pods may have user namespaces of their own: the
	// node can make the idmapped mounts they need (reported in Status).
	UserNamespaces bool
	// AppArmor is the node's AppArmor, for pause processes' profiles; nil
	// is a node without it.
	AppArmor ocispec.AppArmor
	Log      logrus.FieldLogger
}

// Server implements the CRI RuntimeService and ImageService.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	opts Options
}

// New returns a Server over the given managers.
func New(opts Options) *Server { return &Server{opts: opts} }

// Register adds the CRI services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

// Interceptor logs each call at debug level with the pod and container IDs
// it names, logs failures with their cause chain, and maps errors to codes.
func Interceptor(log logrus.FieldLogger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		entry := log.WithField("method", info.FullMethod)
		if r, ok := req.(interface{ GetPodSandboxId() string }); ok && r.GetPodSandboxId() != "" {
			entry = entry.WithField("pod", r.GetPodSandboxId())
		}
		if r, ok := req.(interface{ GetContainerId() string }); ok && r.GetContainerId() != "" {
			entry = entry.WithField("container", r.GetContainerId())
		}
		entry.Debug("CRI call")
		resp, err := handler(ctx, req)
		if err != nil {
			code := Code(err)
			e := entry.WithError(err).WithField("code", code.String())
			if code == codes.NotFound || code == codes.Unimplemented || code == codes.InvalidArgument || code == codes.AlreadyExists {
				e.Info("CRI call failed")
			} else {
				e.Error("CRI call failed")
			}
			if _, ok := status.FromError(err); ok {
				return nil, err
			}
			return nil, status.Error(code, err.Error())
		}
		return resp, nil
	}
}

// Code maps an error from crib's managers to a gRPC code.
func Code(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return codes.InvalidArgument
	case errors.Is(err, errdefs.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return codes.AlreadyExists
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		return codes.FailedPrecondition
	case errors.Is(err, errdefs.ErrUnavailable):
		return codes.Unavailable
	case errors.Is(err, errdefs.ErrUnauthenticated):
		return codes.Unauthenticated
	case errors.Is(err, errdefs.ErrUnimplemented):
		return codes.Unimplemented
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

// StreamInterceptor logs each streaming call (GetContainerEvents and the
// list streams) at debug level, and its failure with its cause chain.
func StreamInterceptor(log logrus.FieldLogger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		entry := log.WithField("method", info.FullMethod)
		entry.Debug("CRI stream")
		if err := handler(srv, ss); err != nil {
			entry.WithError(err).Error("CRI stream failed")
			if _, ok := status.FromError(err); ok {
				return err
			}
			return status.Error(Code(err), err.Error())
		}
		return nil
	}
}
