package server

import (
	"context"
	"errors"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// ExecSync runs a command in a running container and returns its output
// and exit code; a timeout (seconds) that passes is DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	res, err := s.opts.Sandboxes.ExecSync(ctx, req.GetContainerId(), req.GetCmd(), time.Duration(req.GetTimeout())*time.Second)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: int32(res.ExitCode)}, nil
}

// ReopenContainerLog reopens a container's log file after kubelet rotated it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	if err := s.opts.Sandboxes.ReopenContainerLog(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// UpdateContainerResources changes a running container's cgroup limits.
// A request without Linux resources changes nothing.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if r := req.GetLinux(); r != nil {
		var u sandbox.ResourceUpdate = criResources{r}
		if s.opts.NRI != nil {
			u = nriResources{criResources{r}, ctx, req.GetContainerId(), s.opts.NRI}
		}
		if err := s.opts.Sandboxes.UpdateContainerResources(ctx, req.GetContainerId(), u); err != nil {
			return nil, err
		}
		if s.opts.NRI != nil {
			s.opts.NRI.PostUpdateContainer(ctx, req.GetContainerId())
		}
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// nriResources is a CRI resources update that NRI plugins see, and may
// change, once it is translated.
type nriResources struct {
	criResources
	ctx context.Context //nolint:containedctx // Resources has no context of its own; the update lives as long as the call.
	id  string
	nri NRI
}

func (n nriResources) Resources(hugetlb bool) (*specs.LinuxResources, error) {
	res, err := n.criResources.Resources(hugetlb)
	if err != nil {
		return nil, err
	}
	return n.nri.UpdateContainer(n.ctx, n.id, res)
}

// criResources is a CRI resources update, as the sandbox manager applies
// it: translated once the container is known to run.
type criResources struct {
	r *runtimeapi.LinuxContainerResources
}

func (c criResources) Resources(hugetlb bool) (*specs.LinuxResources, error) {
	return ocispec.Resources(c.r, hugetlb)
}

func (c criResources) Refused(err error) error { return updateError(err, c.r) }

// updateError explains the kernel's refusal of an update that the request
// caused, in crib's words before libcontainer's: a memory limit below what
// the container already uses (EBUSY) is FailedPrecondition, a value the
// kernel finds invalid InvalidArgument, both naming linux.resources.
func updateError(err error, r *runtimeapi.LinuxContainerResources) error {
	msg := err.Error()
	switch {
	case r.GetMemoryLimitInBytes() > 0 && (errors.Is(err, unix.EBUSY) || strings.Contains(msg, unix.EBUSY.Error()) ||
		strings.Contains(msg, "unable to set memory limit")):
		return errdefs.FailedPrecondition("linux.resources.memory_limit_in_bytes %d: the kernel refused it, the container uses more: %w", r.GetMemoryLimitInBytes(), err)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return errdefs.InvalidArgument("linux.resources: the kernel refused the new settings: %w", err)
	}
	return err
}
