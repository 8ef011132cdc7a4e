package sandbox

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

// preparePauseRootfs makes <root>/pause/rootfs: the pause binary and the
// empty mount points libcontainer needs. It is shared read-only by all pods
// and rewritten only when the shipped binary changes.
func preparePauseRootfs(rootDir, pauseBinary string) (string, error) {
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

// pauseSpec builds the OCI spec of a pod's pause container: it joins the
// pinned namespaces (the user namespace, if any, at userNS), gets its own
// mount namespace and, unless the pod uses the host's, its own PID
// namespace (where it is PID 1 and reaps zombies).
func pauseSpec(rec *state.Sandbox, userNS, rootfs string, args []string, oomScoreAdj int) *specs.Spec {
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
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: hostname,
		Process: &specs.Process{
			Args:            args,
			Cwd:             "/",
			Env:             []string{"PATH=/"},
			User:            pauseUser(rec),
			NoNewPrivileges: true,
			OOMScoreAdj:     &oomScoreAdj,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces:  ns,
			CgroupsPath: rec.CgroupsPath,
			Sysctl:      rec.Sysctls,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}
