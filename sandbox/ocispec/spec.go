// Package ocispec builds an app container's OCI runtime spec from its CRI
// config, its image's config and its pod. It is a pure translation (the only
// file it reads is the image's /etc/passwd and /etc/group, to resolve
// users); the shim turns the spec into libcontainer's config with specconv.
//
// Every rejected input returns an error wrapping errdefs.ErrInvalidArgument
// that names the CRI field.
package ocispec

import (
	"fmt"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
)

// Input is everything Build needs.
type Input struct {
	// ContainerID is the new container's 64-hex ID.
	ContainerID string
	// Config is the CRI container config.
	Config Config
	// Pod is the pod's record: namespaces, hostname, cgroup parent, shm.
	Pod *state.Sandbox
	// PodFilesDir holds the pod's hostname, resolv.conf and hosts files.
	PodFilesDir string
	// PausePID is the pod's pause process, whose PID namespace a container
	// joins when the pod shares one.
	PausePID int
	// TargetPID is the init PID of the target container for PID mode TARGET.
	TargetPID int
	// Image is the image's config (entrypoint, cmd, env, user, ...).
	Image imgspec.ImageConfig
	// Rootfs is the container's prepared root filesystem.
	Rootfs string
	// VolumeDir holds the directories backing the image's VOLUMEs.
	VolumeDir string
	// ImageMountSources are the host paths of the request's image mounts
	// (ImageMounts), mounted and with their sub paths resolved, by index
	// in the request's mounts.
	ImageMountSources map[int]string
	// OOMScoreAdjFloor is cribd's own oom_score_adj: lower values cannot be
	// written without CAP_SYS_RESOURCE and are raised to it.
	OOMScoreAdjFloor int
	// HugetlbController says whether the node has a hugetlb cgroup
	// controller; without one, hugepage limits are dropped.
	HugetlbController bool
	// AppArmor is the node's AppArmor; nil is a node without it.
	AppArmor AppArmor
	// CgroupV2 says whether the node runs the unified cgroup hierarchy
	// alone (cgroup v2): non-privileged containers then get a cgroup
	// namespace of their own.
	CgroupV2 bool
	// SeccompDefault, if set, replaces crib's built-in RuntimeDefault
	// profile (DefaultSeccomp).
	SeccompDefault *specs.LinuxSeccomp
	// CDI resolves CDI devices; nil is CDI turned off.
	CDI CDI
	// CDIPodAnnotations also takes CDI devices from the pod's
	// cdi.k8s.io/ annotations (see cdi.go).
	CDIPodAnnotations bool
}

// Config is a container's CRI config on its way from the server, which
// validated and converted the rest of the request, to Build: opaque outside
// this package, so that only server/ and ocispec read CRI fields, while the
// sandbox that prepares the container's place carries it unread.
type Config struct{ cri *runtimeapi.ContainerConfig }

// FromCRI wraps a CRI container config for Build.
func FromCRI(cfg *runtimeapi.ContainerConfig) Config { return Config{cri: cfg} }

// Build returns the OCI spec of the container described by in.
func Build(in Input) (*specs.Spec, error) {
	cfg := in.Config.cri
	if cfg == nil {
		return nil, errdefs.InvalidArgument("config is required")
	}
	if in.Pod == nil {
		return nil, fmt.Errorf("build spec of container %s: no pod", in.ContainerID)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	proc, err := buildProcess(in)
	if err != nil {
		return nil, err
	}
	spec := &specs.Spec{
		Version:     specs.Version,
		Root:        &specs.Root{Path: in.Rootfs, Readonly: sc.GetReadonlyRootfs()},
		Process:     proc,
		Annotations: cfg.GetAnnotations(),
		Linux: &specs.Linux{
			CgroupsPath: cgroup.Path(cgroup.RecordDriver(in.Pod.CgroupDriver), in.Pod.CgroupParent, in.ContainerID),
			Resources:   &specs.LinuxResources{},
		},
	}
	if in.Pod.UTSPath != "" {
		spec.Hostname = in.Pod.Hostname
	}
	if spec.Linux.Namespaces, err = namespaces(in); err != nil {
		return nil, err
	}
	if spec.Mounts, err = buildMounts(in); err != nil {
		return nil, err
	}
	spec.Linux.RootfsPropagation = rootfsPropagation(spec.Mounts)
	if err := applySecurity(spec, in); err != nil {
		return nil, err
	}
	if err := applyDevices(spec, in); err != nil {
		return nil, err
	}
	if err := applyResources(spec, cfg.GetLinux().GetResources(), in.OOMScoreAdjFloor, in.HugetlbController); err != nil {
		return nil, err
	}
	if err := applyCDI(spec, in); err != nil {
		return nil, err
	}
	return spec, nil
}

// namespaces places the container in the pod: its network, IPC and UTS
// namespaces are the pod's pins; it has its own mount namespace; its PID
// namespace follows the CRI option.
func namespaces(in Input) ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if in.Pod.NetNSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.Pod.NetNSPath})
	}
	if in.Pod.IPCPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: in.Pod.IPCPath})
	}
	if in.Pod.UTSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace, Path: in.Pod.UTSPath})
	}
	opts := in.Config.cri.GetLinux().GetSecurityContext().GetNamespaceOptions()
	switch opts.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		if in.Pod.PIDMode == state.NamespaceNode {
			break
		}
		if in.PausePID <= 0 {
			return nil, errdefs.FailedPrecondition("pod %s has no pause process to share its PID namespace", in.Pod.ID)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", in.PausePID)})
	case runtimeapi.NamespaceMode_CONTAINER:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case runtimeapi.NamespaceMode_TARGET:
		if opts.GetTargetId() == "" || in.TargetPID <= 0 {
			return nil, errdefs.InvalidArgument("linux.security_context.namespace_options.target_id: PID mode TARGET needs a running target container")
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: fmt.Sprintf("/proc/%d/ns/pid", in.TargetPID)})
	case runtimeapi.NamespaceMode_NODE:
		// The host's PID namespace: no entry.
	}
	if in.Pod.UserNSPath != "" {
		// The mappings are read from the pinned namespace by libcontainer.
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace, Path: in.Pod.UserNSPath})
	}
	// On cgroup v2 a container gets its own cgroup namespace, rooted at its
	// cgroup: the cgroup2 mount at /sys/fs/cgroup then shows its own
	// limits (memory.max, cpu.max) at the top, where programs look for
	// them, and hides the rest of the node's tree. Privileged containers
	// keep the host's view, as with containerd and CRI-O (KEP-2254: tools
	// run privileged, such as node agents, expect the host's tree). On v1
	// nothing changes: the v1 hierarchies have always been shown whole.
	if in.CgroupV2 && !in.Config.cri.GetLinux().GetSecurityContext().GetPrivileged() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return ns, nil
}

// usernsField is the container config field of its user namespace option.
const usernsField = "linux.security_context.namespace_options.userns_options"

// CheckUserNS checks a container's user namespace option against its pod:
// containers run in their pod's user namespace, so the option, if given,
// must name the pod's (mode POD with the pod's mappings, or NODE for a pod
// in the host's), and mounts may carry ID mappings only in a pod user
// namespace.
func CheckUserNS(c Config, pod *state.Sandbox) error {
	cfg := c.cri
	u := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	podMode := runtimeapi.NamespaceMode_NODE
	if pod.UserNSPath != "" {
		podMode = runtimeapi.NamespaceMode_POD
	}
	if u != nil {
		if u.GetMode() != podMode {
			return errdefs.InvalidArgument("%s.mode is %s but pod %s uses %s: a container runs in its pod's user namespace", usernsField, u.GetMode(), pod.ID, podMode)
		}
		if podMode == runtimeapi.NamespaceMode_POD &&
			(!sameMappings(u.GetUids(), pod.UIDMappings) || !sameMappings(u.GetGids(), pod.GIDMappings)) {
			return errdefs.InvalidArgument("%s: uids and gids differ from the mappings of pod %s", usernsField, pod.ID)
		}
	}
	if podMode == runtimeapi.NamespaceMode_POD {
		// An image mount is idmapped by the store through the pod's
		// mappings (see imageMount); kubelet gives it those or none.
		for i, m := range cfg.GetMounts() {
			if m.GetImage().GetImage() != "" && (len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0) &&
				(!sameMappings(m.GetUidMappings(), pod.UIDMappings) || !sameMappings(m.GetGidMappings(), pod.GIDMappings)) {
				return errdefs.InvalidArgument("mounts[%d]: an image mount's uid_mappings and gid_mappings must be those of pod %s, through which its image is mounted", i, pod.ID)
			}
		}
		return nil
	}
	for i, m := range cfg.GetMounts() {
		if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
			return errdefs.InvalidArgument("mounts[%d]: uid_mappings and gid_mappings need a pod user namespace; pod %s uses the host's", i, pod.ID)
		}
	}
	return nil
}

func sameMappings(cri []*runtimeapi.IDMapping, pod []state.IDMapping) bool {
	if len(cri) != len(pod) {
		return false
	}
	for i, m := range cri {
		if m.GetContainerId() != pod[i].ContainerID || m.GetHostId() != pod[i].HostID || m.GetLength() != pod[i].Size {
			return false
		}
	}
	return true
}
