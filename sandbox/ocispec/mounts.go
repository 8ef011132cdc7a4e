package ocispec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

// defaultMounts are the kernel filesystems every container gets.
func defaultMounts(privileged bool) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		sysOpts[3], cgroupOpts[4] = "rw", "rw"
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
	}
}

// buildMounts returns the default mounts, the pod's files and /dev/shm, and
// the request's mounts, sorted so that a parent is mounted before its
// children. A request mount replaces a default at the same destination.
func buildMounts(in Input) ([]specs.Mount, error) {
	sc := in.Config.cri.GetLinux().GetSecurityContext()
	requested := map[string]bool{}
	var out []specs.Mount
	for i, m := range in.Config.cri.GetMounts() {
		mnt, err := criMount(i, m, in.ImageMountSources)
		if err != nil {
			return nil, err
		}
		requested[mnt.Destination] = true
		out = append(out, mnt)
	}
	add := func(m specs.Mount) {
		if !requested[m.Destination] {
			out = append(out, m)
		}
	}
	for _, m := range defaultMounts(sc.GetPrivileged()) {
		add(m)
	}
	// crib's own binds are seen through the pod's user namespace, if it has
	// one, so that its root owns what the host's root owns.
	own := func(opts ...string) []string {
		if in.Pod.UserNSPath != "" {
			opts = append(opts, "idmap")
		}
		return opts
	}
	podFileOpts := own("rbind", "rprivate", "rw")
	if sc.GetReadonlyRootfs() {
		podFileOpts[2] = "ro"
	}
	for dst, name := range map[string]string{"/etc/hostname": state.HostnameFile, "/etc/resolv.conf": state.ResolvConfFile, "/etc/hosts": state.HostsFile} {
		if in.PodFilesDir == "" {
			break
		}
		add(specs.Mount{Destination: dst, Type: "bind", Source: filepath.Join(in.PodFilesDir, name), Options: podFileOpts})
	}
	for _, v := range ImageVolumes(in) {
		add(specs.Mount{Destination: v.Path, Type: "bind", Source: v.Source, Options: own("rbind", "rprivate", "rw")})
	}
	switch {
	case in.Pod.ShmPath != "":
		// Not idmapped: the pod's own tmpfs is mounted owned by its root
		// (sandbox.shmOptions), and tmpfs takes idmapped mounts only from
		// Linux 6.3.
		add(specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.Pod.ShmPath, Options: []string{"rbind", "rprivate", "rw"}})
	case in.Pod.IPCPath == "":
		add(specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate", "rw"}})
	}
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i].Destination) < depth(out[j].Destination) })
	return out, nil
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// criMount translates mounts[i], checking its host path and propagation.
// An image mount's source is in imageSources (by index).
func criMount(i int, m *runtimeapi.Mount, imageSources map[int]string) (specs.Mount, error) {
	field := fmt.Sprintf("mounts[%d]", i)
	if m.GetImage().GetImage() != "" {
		return imageMount(i, m, imageSources[i])
	}
	dst := m.GetContainerPath()
	if err := noNUL(field+".container_path", dst); err != nil {
		return specs.Mount{}, err
	}
	if err := noNUL(field+".host_path", m.GetHostPath()); err != nil {
		return specs.Mount{}, err
	}
	if !filepath.IsAbs(dst) {
		return specs.Mount{}, errdefs.InvalidArgument("%s.container_path %q is not an absolute path", field, dst)
	}
	src := m.GetHostPath()
	if !filepath.IsAbs(src) {
		return specs.Mount{}, errdefs.InvalidArgument("%s.host_path %q is not an absolute path", field, src)
	}
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return specs.Mount{}, errdefs.InvalidArgument("%s.host_path %q does not exist", field, src)
		}
		return specs.Mount{}, fmt.Errorf("%s.host_path %q: %w", field, src, err)
	}
	opts := []string{"rbind"}
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		if err := requirePropagation(src, "shared:", "master:"); err != nil {
			return specs.Mount{}, errdefs.InvalidArgument("%s: propagation HOST_TO_CONTAINER needs %s on a shared or slave mount: %v", field, src, err)
		}
		opts = append(opts, "rslave")
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		if err := requirePropagation(src, "shared:"); err != nil {
			return specs.Mount{}, errdefs.InvalidArgument("%s: propagation BIDIRECTIONAL needs %s on a shared mount: %v", field, src, err)
		}
		opts = append(opts, "rshared")
	default:
		return specs.Mount{}, errdefs.InvalidArgument("%s.propagation %v is unknown", field, m.GetPropagation())
	}
	switch {
	case m.GetRecursiveReadOnly():
		if !m.GetReadonly() || m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return specs.Mount{}, errdefs.InvalidArgument("%s.recursive_read_only needs readonly and PROPAGATION_PRIVATE", field)
		}
		opts = append(opts, "rro")
	case m.GetReadonly():
		opts = append(opts, "ro")
	default:
		opts = append(opts, "rw")
	}
	mnt := specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	if len(m.GetUidMappings()) > 0 || len(m.GetGidMappings()) > 0 {
		// An idmapped mount: kubelet gives a pod in its own user namespace
		// that namespace's mappings, so that files the host's root owns
		// on the volume are the pod root's.
		if len(m.GetUidMappings()) == 0 || len(m.GetGidMappings()) == 0 {
			return specs.Mount{}, errdefs.InvalidArgument("%s: uid_mappings and gid_mappings go together; only one is set", field)
		}
		mnt.UIDMappings, mnt.GIDMappings = specIDMappings(m.GetUidMappings()), specIDMappings(m.GetGidMappings())
	}
	return mnt, nil
}

func specIDMappings(in []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, 0, len(in))
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}

// requirePropagation checks that the mount holding path has one of the
// optional fields (e.g. "shared:") in /proc/self/mountinfo.
func requirePropagation(path string, want ...string) error {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return err
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		if (path == m.Mountpoint || strings.HasPrefix(path, strings.TrimSuffix(m.Mountpoint, "/")+"/")) &&
			(best == nil || len(m.Mountpoint) >= len(best.Mountpoint)) {
			best = m
		}
	}
	if best == nil {
		return fmt.Errorf("no mount holds it")
	}
	for _, w := range want {
		if strings.Contains(best.Optional, w) {
			return nil
		}
	}
	return fmt.Errorf("its mount %s is private (make it shared: mount --make-rshared %s)", best.Mountpoint, best.Mountpoint)
}

// rootfsPropagation makes the container's root shared when a mount is
// rshared (so mounts made inside reach the host) and a slave when one is
// rslave (so host mounts reach inside); otherwise libcontainer's default.
func rootfsPropagation(mounts []specs.Mount) string {
	prop := ""
	for _, m := range mounts {
		for _, o := range m.Options {
			switch {
			case o == "rshared":
				return "rshared"
			case o == "rslave":
				prop = "rslave"
			}
		}
	}
	return prop
}

// ImageVolume is a VOLUME of the image backed by a directory of the
// container's own.
type ImageVolume struct {
	// Path is the volume's path in the container.
	Path string
	// Source is the host directory under Input.VolumeDir that backs it.
	Source string
}

// ImageVolumes lists the image's VOLUMEs that no request mount covers, each
// with the directory (under in.VolumeDir) that backs it; the caller creates
// the directories before the container starts. None without a VolumeDir.
func ImageVolumes(in Input) []ImageVolume {
	if in.VolumeDir == "" {
		return nil
	}
	mounted := map[string]bool{}
	for _, m := range in.Config.cri.GetMounts() {
		mounted[filepath.Clean(m.GetContainerPath())] = true
	}
	paths := make([]string, 0, len(in.Image.Volumes))
	for p := range in.Image.Volumes {
		if p = filepath.Clean(p); filepath.IsAbs(p) && p != "/" && !mounted[p] {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	out := make([]ImageVolume, 0, len(paths))
	for i, p := range paths {
		out = append(out, ImageVolume{Path: p, Source: filepath.Join(in.VolumeDir, fmt.Sprintf("%d", i))})
	}
	return out
}

// ImageMount is a mount of an image (CRI Mount.image, a Kubernetes image
// volume) that the caller mounts before Build, giving Build the result in
// Input.ImageMountSources.
type ImageMount struct {
	// Index is the mount's index in the request's mounts.
	Index int
	// Image is the image as kubelet names it (a reference or an ID); it
	// must be in the store.
	Image string
	// SubPath is image_sub_path: the path in the image to mount instead
	// of its root, relative and without "..", or "" for the root.
	SubPath string
}

// Field is the CRI field naming the mount, for errors.
func (m ImageMount) Field() string { return fmt.Sprintf("mounts[%d]", m.Index) }

// ImageMounts lists cfg's image mounts, checking what can be checked
// without the image: the container path, and that the sub path is
// relative and never climbs with "..". Whether it exists in the image,
// and where its symlinks lead, only the mounted image tells.
func ImageMounts(cfg Config) ([]ImageMount, error) {
	var out []ImageMount
	for i, m := range cfg.cri.GetMounts() {
		ref := m.GetImage().GetImage()
		if ref == "" {
			continue
		}
		field := fmt.Sprintf("mounts[%d]", i)
		if err := noNUL(field+".image.image", ref); err != nil {
			return nil, err
		}
		if err := checkContainerPath(field, m.GetContainerPath()); err != nil {
			return nil, err
		}
		if m.GetHostPath() != "" {
			return nil, errdefs.InvalidArgument("%s: host_path %q and image %q are exclusive", field, m.GetHostPath(), ref)
		}
		sub, err := checkImageSubPath(field, m.GetImageSubPath())
		if err != nil {
			return nil, err
		}
		out = append(out, ImageMount{Index: i, Image: ref, SubPath: sub})
	}
	return out, nil
}

// checkImageSubPath checks an image_sub_path and returns it clean.
func checkImageSubPath(field, sub string) (string, error) {
	if sub == "" {
		return "", nil
	}
	if err := noNUL(field+".image_sub_path", sub); err != nil {
		return "", err
	}
	if filepath.IsAbs(sub) {
		return "", errdefs.InvalidArgument("%s.image_sub_path %q must be relative to the image's root", field, sub)
	}
	for _, part := range strings.Split(sub, "/") {
		if part == ".." {
			return "", errdefs.InvalidArgument("%s.image_sub_path %q must not contain \"..\"", field, sub)
		}
	}
	if clean := filepath.Clean(sub); clean != "." {
		return clean, nil
	}
	return "", nil
}

func checkContainerPath(field, dst string) error {
	if err := noNUL(field+".container_path", dst); err != nil {
		return err
	}
	if !filepath.IsAbs(dst) {
		return errdefs.InvalidArgument("%s.container_path %q is not an absolute path", field, dst)
	}
	return nil
}

// imageMount translates image mount mounts[i], mounted (and its sub path
// resolved) at src. It is read-only and private whatever the request
// says: the image is shared, and an image volume is read-only by
// definition (KEP-4639). Its uid and gid mappings are dropped: in a pod
// user namespace the store already mounted the image's layers through
// the pod's mappings, as it does a root filesystem, and idmapping that
// again would shift every owner twice.
func imageMount(i int, m *runtimeapi.Mount, src string) (specs.Mount, error) {
	field := fmt.Sprintf("mounts[%d]", i)
	if err := checkContainerPath(field, m.GetContainerPath()); err != nil {
		return specs.Mount{}, err
	}
	if src == "" {
		return specs.Mount{}, fmt.Errorf("%s.image %q: not mounted before the spec was built", field, m.GetImage().GetImage())
	}
	ro := "ro"
	if m.GetRecursiveReadOnly() {
		ro = "rro"
	}
	return specs.Mount{Destination: m.GetContainerPath(), Type: "bind", Source: src, Options: []string{"rbind", "rprivate", ro}}, nil
}
