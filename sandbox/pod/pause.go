package pod

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/state"
)

// pauseUID is the user the pause process runs as, as in Kubernetes' pause image.
const pauseUID = 65535

// sandboxOOMScoreAdj is what kubelet expects for pod infrastructure.
const sandboxOOMScoreAdj = -998

// pauseArg0 is the pause binary's path inside its rootfs.
const pauseArg0 = "/crib-pause"

// pauseUser is pauseUID, or root when the pod's user namespace is too small
// to map it: inside a pod user namespace root is no one on the host.
func pauseUser(rec *state.Sandbox) specs.User {
	_, uidOK := state.HostID(rec.UIDMappings, pauseUID)
	_, gidOK := state.HostID(rec.GIDMappings, pauseUID)
	if rec.UserNSPath == "" || (uidOK && gidOK) {
		return specs.User{UID: pauseUID, GID: pauseUID}
	}
	return specs.User{}
}

// PreparePauseRootfs makes <root>/pause/rootfs: the pause binary and the
// empty mount points libcontainer needs. It is shared read-only by all pods
// and rewritten only when the shipped binary changes.
func PreparePauseRootfs(rootDir, pauseBinary string) (string, error) {
	rootfs := filepath.Join(rootDir, "pause", "rootfs")
	for _, d := range []string{"proc", "dev", "sys", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return "", fmt.Errorf("pause rootfs: %w", err)
		}
	}
	want, err := os.ReadFile(pauseBinary)
	if err != nil {
		return "", fmt.Errorf("pause binary: %w", err)
	}
	dst := filepath.Join(rootfs, pauseArg0)
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, want) {
		return rootfs, nil
	}
	if err := state.WriteFile(dst, want, 0o755); err != nil {
		return "", fmt.Errorf("pause rootfs: %w", err)
	}
	return rootfs, nil
}

// pauseConfig is what a pause container's spec takes besides the pod's record.
type pauseConfig struct {
	// UserNS is the user namespace to join, if the pod has one.
	UserNS string
	// Rootfs and Args are the pause process's root and command line.
	Rootfs string
	Args   []string
	// OOMScoreAdj is already clamped to cribd's own.
	OOMScoreAdj int
	// Sysctls are set in the pod's namespaces (see podSysctls).
	Sysctls map[string]string
}

// pauseSpec builds the OCI spec of a pod's pause container: it joins the
// pinned namespaces (the user namespace, if any, at c.UserNS), gets its own
// mount namespace and, unless the pod uses the host's, its own PID
// namespace (where it is PID 1 and reaps zombies). It runs under the
// AppArmor profile server/ chose for the pod (rec.AppArmorProfile).
func pauseSpec(rec *state.Sandbox, c pauseConfig) *specs.Spec {
	userNS, oomScoreAdj := c.UserNS, c.OOMScoreAdj
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if rec.NetworkMode != state.NamespaceNode {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: rec.NetNSPath})
	}
	if rec.IPCPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: rec.IPCPath})
	}
	if rec.UTSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace, Path: rec.UTSPath})
	}
	if rec.PIDMode != state.NamespaceNode {
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if userNS != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace, Path: userNS})
	}
	hostname := ""
	if rec.UTSPath != "" {
		hostname = rec.Hostname
	}
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: c.Rootfs, Readonly: true},
		Hostname: hostname,
		Process: &specs.Process{
			Args:            c.Args,
			Cwd:             "/",
			Env:             []string{"PATH=/"},
			User:            pauseUser(rec),
			NoNewPrivileges: true,
			OOMScoreAdj:     &oomScoreAdj,
			Capabilities:    &specs.LinuxCapabilities{},
			ApparmorProfile: rec.AppArmorProfile,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces:  ns,
			CgroupsPath: rec.CgroupsPath,
			Sysctl:      c.Sysctls,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// DefaultPodSysctls are containerd 2's defaults for a pod with its own
// network namespace: any user may listen on ports below 1024 and open
// ICMP echo sockets (ping without CAP_NET_RAW).
var DefaultPodSysctls = map[string]string{
	"net.ipv4.ip_unprivileged_port_start": "0",
	"net.ipv4.ping_group_range":           "0 2147483647",
}

// podSysctls returns the sysctls pause sets for the pod: its own, over
// DefaultPodSysctls when defaults is on and the pod has its own network
// namespace. A pod with its own user namespace does not get the default
// ping_group_range: the kernel refuses group IDs the namespace does not
// map, and it maps 65536 at most.
func podSysctls(rec *state.Sandbox, defaults bool) map[string]string {
	if !defaults || rec.NetworkMode == state.NamespaceNode {
		return rec.Sysctls
	}
	out := make(map[string]string, len(DefaultPodSysctls)+len(rec.Sysctls))
	for k, v := range DefaultPodSysctls {
		if k == "net.ipv4.ping_group_range" && len(rec.UIDMappings) > 0 {
			continue
		}
		out[k] = v
	}
	for k, v := range rec.Sysctls {
		out[k] = v
	}
	return out
}
