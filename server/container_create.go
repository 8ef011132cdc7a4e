package server

import (
	"context"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// CreateContainer creates an app container in a ready pod from an image in
// the store.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	if req.GetConfig() == nil {
		return nil, errdefs.InvalidArgument("config is required")
	}
	// The pod is named before the config is checked, as it was when the
	// sandbox checked both: an unknown pod is NotFound whatever the config.
	if _, err := s.opts.Sandboxes.Get(req.GetPodSandboxId()); err != nil {
		return nil, err
	}
	creq, err := containerRequest(req.GetConfig())
	if err != nil {
		return nil, err
	}
	create := func() (string, error) { return s.opts.Sandboxes.CreateContainer(ctx, req.GetPodSandboxId(), creq) }
	var id string
	if s.opts.NRI != nil {
		id, err = s.opts.NRI.CreateContainer(ctx, create)
	} else {
		id, err = create()
	}
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// containerRequest validates a container's CRI config and converts it to
// the sandbox manager's request. What only the OCI spec needs travels in
// it unread, for ocispec.Build to check and translate.
func containerRequest(cfg *runtimeapi.ContainerConfig) (sandbox.ContainerRequest, error) {
	md := cfg.GetMetadata()
	if md == nil || md.GetName() == "" {
		return sandbox.ContainerRequest{}, errdefs.InvalidArgument("config.metadata.name is empty")
	}
	ref := cfg.GetImage().GetImage()
	if ref == "" {
		return sandbox.ContainerRequest{}, errdefs.InvalidArgument("config.image.image is empty")
	}
	req := sandbox.ContainerRequest{
		Name:        md.GetName(),
		Attempt:     md.GetAttempt(),
		Image:       ref,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		LogPath:     cfg.GetLogPath(),
		Stdin:       cfg.GetStdin(),
		StdinOnce:   cfg.GetStdinOnce(),
		StopSignal:  signalNumber(cfg.GetStopSignal()),
		TargetID:    cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetTargetId(),
		Spec:        ocispec.FromCRI(cfg),
	}
	for _, mnt := range cfg.GetMounts() {
		req.Mounts = append(req.Mounts, state.Mount{
			ContainerPath: mnt.GetContainerPath(), HostPath: mnt.GetHostPath(),
			Readonly: mnt.GetReadonly(), Propagation: int32(mnt.GetPropagation()),
			Image: mnt.GetImage().GetImage(), ImageSubPath: mnt.GetImageSubPath(),
		})
	}
	return req, nil
}

// signalNumber is the number of a CRI stop signal; 0 for the runtime's
// default, or a signal this system does not know (the image's STOPSIGNAL,
// else SIGTERM, is sent then).
func signalNumber(s runtimeapi.Signal) int {
	if s == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return 0
	}
	return int(unix.SignalNum(strings.TrimPrefix(s.String(), "SIGNAL_")))
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	start := func() error { return s.opts.Sandboxes.StartContainer(ctx, req.GetContainerId()) }
	if s.opts.NRI != nil {
		if err := s.opts.NRI.StartContainer(ctx, req.GetContainerId(), start); err != nil {
			return nil, err
		}
	} else if err := start(); err != nil {
		return nil, err
	}
	return &runtimeapi.StartContainerResponse{}, nil
}
