// Package server translates CRI runtime.v1 calls into crib's managers. Each
// RPC lives in its own file and does three things: validate the request,
// call a manager, translate the result. One unary interceptor logs every
// call and maps crib's errors to gRPC status codes, so handlers return
// plain wrapped errors.
package server

import (
	"context"
	"errors"

	"github.com/opencontainers/runtime-spec/specs-go"
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

// NetworkInfo is what a NetworkStatus may add to Status(verbose): details
// of the network config in use, marshalled as JSON.
type NetworkInfo interface {
	Info() any
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
	// Handlers are the runtime handlers besides the default one, by name,
	// with their features (reported in Status, and checked per pod).
	Handlers map[string]sandbox.Handler
	// AppArmor is the node's AppArmor, for pause processes' profiles; nil
	// is a node without it.
	AppArmor ocispec.AppArmor
	// Info holds the fixed entries of Status(verbose)'s info map (crictl
	// info), each a JSON document: the effective config and the like.
	Info map[string]string
	// NRI relays the lifecycle to NRI plugins; nil is NRI off.
	NRI NRI
	Log logrus.FieldLogger
}

// NRI relays pod and container lifecycle calls to NRI plugins
// (server/nri). The calls that take a function run it as the call's own
// work, so the plugins see the state before and after it; what plugins do
// to a container's spec at create goes through sandbox.SpecAdjuster.
type NRI interface {
	// RunPodSandbox runs run and tells plugins of the pod it made. An
	// error with an ID is the plugins' refusal of a pod that runs: the
	// caller removes it.
	RunPodSandbox(ctx context.Context, run func() (string, error)) (string, error)
	StopPodSandbox(ctx context.Context, podID string, stop func() error) error
	RemovePodSandbox(ctx context.Context, podID string, remove func() error) error
	// CreateContainer runs create, during which the container's spec goes
	// through the plugins (sandbox.SpecAdjuster), and tells them of the
	// container it made.
	CreateContainer(ctx context.Context, create func() (string, error)) (string, error)
	StartContainer(ctx context.Context, id string, start func() error) error
	StopContainer(ctx context.Context, id string, stop func() error) error
	RemoveContainer(ctx context.Context, id string, remove func() error) error
	// UpdateContainer returns the resources to apply, as plugins adjusted
	// them.
	UpdateContainer(ctx context.Context, id string, res *specs.LinuxResources) (*specs.LinuxResources, error)
	PostUpdateContainer(ctx context.Context, id string)
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
