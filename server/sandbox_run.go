package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// RunPodSandbox creates and starts a pod: pinned namespaces, a pause
// process, CNI networking.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	spec, err := sandboxSpec(req, s.opts.Handlers)
	if err != nil {
		return nil, err
	}
	if spec.AppArmorProfile, err = ocispec.SandboxAppArmor(req.GetConfig().GetLinux().GetSecurityContext(), s.opts.AppArmor); err != nil {
		return nil, err
	}
	if len(spec.UIDMappings) > 0 && !s.opts.UserNamespaces {
		return nil, errdefs.FailedPrecondition("%s: this node cannot make the idmapped mounts a pod user namespace needs (cribd logs why at start)", usernsField)
	}
	if h, ok := s.opts.Handlers[spec.RuntimeHandler]; ok && len(spec.UIDMappings) > 0 && !h.UserNamespaces {
		return nil, errdefs.FailedPrecondition("%s: runtime handler %q cannot run pods with user namespaces of their own (its runtime has no idmapped mounts; see runtime.handlers.%s.user_namespaces)", usernsField, spec.RuntimeHandler, spec.RuntimeHandler)
	}
	run := func() (string, error) { return s.opts.Sandboxes.Run(ctx, spec) }
	var id string
	if s.opts.NRI != nil {
		id, err = s.opts.NRI.RunPodSandbox(ctx, run)
		if err != nil && id != "" {
			// As a failed Run leaves nothing, a pod a plugin refused goes,
			// and plugins are told, so that they release what they set
			// aside for it (containerd tells RemovePodSandbox).
			rctx := context.WithoutCancel(ctx)
			remove := func() error { return s.opts.Sandboxes.Remove(rctx, id) }
			if rerr := s.opts.NRI.RemovePodSandbox(rctx, id, remove); rerr != nil {
				s.opts.Log.WithError(rerr).WithField("pod", id).Error("removing the pod an NRI plugin refused")
			}
		}
	} else {
		id, err = run()
	}
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// sandboxSpec validates a RunPodSandbox request against the configured
// runtime handlers and converts it to the sandbox manager's record.
func sandboxSpec(req *runtimeapi.RunPodSandboxRequest, handlers map[string]sandbox.Handler) (_ state.Sandbox, err error) {
	cfg := req.GetConfig()
	if cfg == nil {
		return state.Sandbox{}, errdefs.InvalidArgument("config is required")
	}
	md := cfg.GetMetadata()
	if md == nil {
		return state.Sandbox{}, errdefs.InvalidArgument("config.metadata is required")
	}
	if md.GetName() == "" {
		return state.Sandbox{}, errdefs.InvalidArgument("config.metadata.name is empty")
	}
	if h := req.GetRuntimeHandler(); h != "" {
		if _, ok := handlers[h]; !ok {
			return state.Sandbox{}, errdefs.InvalidArgument("runtime_handler %q is not configured (handlers: %s)", h, handlerList(handlers))
		}
	}
	if cfg.GetLogDirectory() != "" && !strings.HasPrefix(cfg.GetLogDirectory(), "/") {
		return state.Sandbox{}, errdefs.InvalidArgument("config.log_directory %q is not an absolute path", cfg.GetLogDirectory())
	}
	if err := checkPodFiles(cfg); err != nil {
		return state.Sandbox{}, err
	}
	linux := cfg.GetLinux()
	nsOpts := linux.GetSecurityContext().GetNamespaceOptions()
	spec := state.Sandbox{
		Metadata: state.PodMetadata{
			Name: md.GetName(), UID: md.GetUid(), Namespace: md.GetNamespace(), Attempt: md.GetAttempt(),
		},
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		Hostname:       cfg.GetHostname(),
		LogDirectory:   cfg.GetLogDirectory(),
		RuntimeHandler: req.GetRuntimeHandler(),
		DNS: state.DNS{
			Servers:  cfg.GetDnsConfig().GetServers(),
			Searches: cfg.GetDnsConfig().GetSearches(),
			Options:  cfg.GetDnsConfig().GetOptions(),
		},
		Sysctls:      linux.GetSysctls(),
		CgroupParent: linux.GetCgroupParent(),
		NetworkMode:  namespaceMode(nsOpts.GetNetwork()),
		PIDMode:      namespaceMode(nsOpts.GetPid()),
		IPCMode:      namespaceMode(nsOpts.GetIpc()),
	}
	if spec.UIDMappings, spec.GIDMappings, err = podUserNS(nsOpts); err != nil {
		return state.Sandbox{}, err
	}
	if spec.PIDMode == state.NamespaceTarget {
		return state.Sandbox{}, errdefs.InvalidArgument("config.linux.security_context.namespace_options.pid: TARGET applies to containers, not pods")
	}
	for i, pm := range cfg.GetPortMappings() {
		if pm.GetContainerPort() <= 0 || pm.GetContainerPort() > 65535 {
			return state.Sandbox{}, errdefs.InvalidArgument("config.port_mappings[%d].container_port %d is out of range", i, pm.GetContainerPort())
		}
		if pm.GetHostPort() < 0 || pm.GetHostPort() > 65535 {
			return state.Sandbox{}, errdefs.InvalidArgument("config.port_mappings[%d].host_port %d is out of range", i, pm.GetHostPort())
		}
		if err := checkHostIP(i, pm.GetHostIp()); err != nil {
			return state.Sandbox{}, err
		}
		if pm.GetHostPort() == 0 {
			continue // no host port: nothing for portmap to do
		}
		spec.PortMappings = append(spec.PortMappings, state.PortMapping{
			Protocol:      strings.ToLower(pm.GetProtocol().String()),
			ContainerPort: pm.GetContainerPort(),
			HostPort:      pm.GetHostPort(),
			HostIP:        pm.GetHostIp(),
		})
	}
	if err := ocispec.CheckSysctls(&spec); err != nil {
		return state.Sandbox{}, err
	}
	return spec, nil
}

func namespaceMode(m runtimeapi.NamespaceMode) state.NamespaceMode {
	switch m {
	case runtimeapi.NamespaceMode_CONTAINER:
		return state.NamespaceContainer
	case runtimeapi.NamespaceMode_NODE:
		return state.NamespaceNode
	case runtimeapi.NamespaceMode_TARGET:
		return state.NamespaceTarget
	}
	return state.NamespacePod
}

func criNamespaceMode(m state.NamespaceMode) runtimeapi.NamespaceMode {
	switch m {
	case state.NamespaceContainer:
		return runtimeapi.NamespaceMode_CONTAINER
	case state.NamespaceNode:
		return runtimeapi.NamespaceMode_NODE
	case state.NamespaceTarget:
		return runtimeapi.NamespaceMode_TARGET
	}
	return runtimeapi.NamespaceMode_POD
}
