package nri

import (
	"maps"

	"github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
)

// podSandbox is pod as NRI plugins see it. Pod overhead and pod resources
// are left out: crib keeps no record of them.
func podSandbox(pod *state.Sandbox) *api.PodSandbox {
	var ns []*api.LinuxNamespace
	for _, n := range []struct{ typ, path string }{
		{string(specs.NetworkNamespace), pod.NetNSPath},
		{string(specs.IPCNamespace), pod.IPCPath},
		{string(specs.UTSNamespace), pod.UTSPath},
		{string(specs.UserNamespace), pod.UserNSPath},
	} {
		if n.path != "" {
			ns = append(ns, &api.LinuxNamespace{Type: n.typ, Path: n.path})
		}
	}
	return &api.PodSandbox{
		Id:             pod.ID,
		Name:           pod.Metadata.Name,
		Uid:            pod.Metadata.UID,
		Namespace:      pod.Metadata.Namespace,
		Labels:         maps.Clone(pod.Labels),
		Annotations:    maps.Clone(pod.Annotations),
		RuntimeHandler: pod.RuntimeHandler,
		Linux: &api.LinuxPodSandbox{
			CgroupParent: pod.CgroupParent,
			CgroupsPath:  pod.CgroupsPath,
			Namespaces:   ns,
		},
		Pid: uint32(pod.PausePID),
		Ips: append([]string(nil), pod.IPs...),
	}
}

// containerState is a container's state in NRI's terms.
func containerState(s sandbox.ContainerState) api.ContainerState {
	switch s {
	case sandbox.ContainerCreated:
		return api.ContainerState_CONTAINER_CREATED
	case sandbox.ContainerRunning:
		return api.ContainerState_CONTAINER_RUNNING
	case sandbox.ContainerExited:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}

// container is a container as NRI plugins see it: its record, its running
// state (st), and what its OCI spec says of the process and the kernel
// (spec may be nil: a container whose spec file is gone is shown by its
// record alone).
func container(rec *state.Container, st api.ContainerState, spec *specs.Spec) *api.Container {
	c := &api.Container{
		Id:           rec.ID,
		PodSandboxId: rec.PodID,
		Name:         rec.Name,
		State:        st,
		Labels:       maps.Clone(rec.Labels),
		Annotations:  maps.Clone(rec.Annotations),
		CreatedAt:    rec.CreatedAt.UnixNano(),
		Pid:          uint32(rec.Pid),
		Image:        &api.Image{Name: rec.Image},
	}
	if rec.User != nil {
		c.User = &api.User{Uid: rec.User.UID, Gid: rec.User.GID, AdditionalGids: append([]uint32(nil), rec.User.AdditionalGids...)}
	}
	if spec == nil {
		return c
	}
	// The spec's annotations are the request's plus any a plugin added.
	if spec.Annotations != nil {
		c.Annotations = maps.Clone(spec.Annotations)
	}
	c.Mounts = api.FromOCIMounts(spec.Mounts)
	c.Hooks = api.FromOCIHooks(spec.Hooks)
	if p := spec.Process; p != nil {
		c.Args = append([]string(nil), p.Args...)
		c.Env = append([]string(nil), p.Env...)
		for _, l := range p.Rlimits {
			c.Rlimits = append(c.Rlimits, &api.POSIXRlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
		}
		c.User = &api.User{Uid: p.User.UID, Gid: p.User.GID, AdditionalGids: append([]uint32(nil), p.User.AdditionalGids...)}
	}
	if l := spec.Linux; l != nil {
		c.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, nil),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      maps.Clone(l.Sysctl),
		}
		if p := spec.Process; p != nil && p.OOMScoreAdj != nil {
			c.Linux.OomScoreAdj = api.Int(*p.OOMScoreAdj)
		}
		if l.Seccomp != nil {
			c.Linux.SeccompPolicy = api.FromOCILinuxSeccomp(l.Seccomp)
		}
	}
	return c
}

// viewContainer is a container already known to crib, from its view and
// the spec cribd saved for it.
func viewContainer(v sandbox.ContainerView, spec *specs.Spec) *api.Container {
	c := container(&v.Container, containerState(v.State()), spec)
	if !v.Shim.StartedAt.IsZero() {
		c.StartedAt = v.Shim.StartedAt.UnixNano()
	}
	if !v.Shim.FinishedAt.IsZero() {
		c.FinishedAt = v.Shim.FinishedAt.UnixNano()
		c.ExitCode = int32(v.Shim.ExitCode)
		c.StatusReason = v.Shim.Reason
		c.StatusMessage = v.Shim.Message
	}
	if c.Pid == 0 && v.Shim.Pid != 0 {
		c.Pid = uint32(v.Shim.Pid)
	}
	return c
}
