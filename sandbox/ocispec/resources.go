package ocispec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// applyResources translates the CRI resources into cgroup settings.
// Without a swap limit, swap equals the memory limit (no swap), as kubelet
// expects on a node where swap is accounted.
func applyResources(spec *specs.Spec, r *runtimeapi.LinuxContainerResources, oomFloor int, hugetlb bool) error {
	res := spec.Linux.Resources
	if r == nil {
		adj := oomFloor
		spec.Process.OOMScoreAdj = &adj
		return nil
	}
	cpu := &specs.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
	if s := r.GetCpuShares(); s > 0 {
		v := uint64(s)
		cpu.Shares = &v
	}
	if q := r.GetCpuQuota(); q != 0 {
		cpu.Quota = &q
	}
	if p := r.GetCpuPeriod(); p > 0 {
		v := uint64(p)
		cpu.Period = &v
	}
	res.CPU = cpu
	if limit := r.GetMemoryLimitInBytes(); limit > 0 {
		swap := limit
		if s := r.GetMemorySwapLimitInBytes(); s != 0 {
			if s > 0 && s < limit {
				return errdefs.InvalidArgument("linux.resources.memory_swap_limit_in_bytes %d is below memory_limit_in_bytes %d", s, limit)
			}
			swap = s
		}
		res.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &swap}
	}
	// kubelet sends a limit (often 0) for every hugepage size the node has;
	// without a hugetlb controller they cannot be set and are dropped, as
	// containerd does by default (tolerate_missing_hugetlb_controller).
	for i, h := range r.GetHugepageLimits() {
		if !hugetlb {
			break
		}
		if h.GetPageSize() == "" {
			return errdefs.InvalidArgument("linux.resources.hugepage_limits[%d].page_size is empty", i)
		}
		res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	if len(r.GetUnified()) > 0 {
		res.Unified = r.GetUnified()
	}
	adj := int(r.GetOomScoreAdj())
	if adj < oomFloor {
		adj = oomFloor
	}
	spec.Process.OOMScoreAdj = &adj
	return nil
}

// applyDevices adds the request's devices (a privileged container gets
// every host device instead) and the device cgroup rules.
func applyDevices(spec *specs.Spec, in Input) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	res := spec.Linux.Resources
	if sc.GetPrivileged() {
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
	res.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for i, d := range in.Config.GetDevices() {
		field := fmt.Sprintf("devices[%d]", i)
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return errdefs.InvalidArgument("%s.permissions %q must be made of r, w and m", field, perms)
		}
		dev, err := hostDevice(d.GetHostPath())
		if err != nil {
			return errdefs.InvalidArgument("%s.host_path: %v", field, err)
		}
		dev.Path = d.GetContainerPath()
		if dev.Path == "" {
			dev.Path = d.GetHostPath()
		}
		spec.Linux.Devices = append(spec.Linux.Devices, dev)
		major, minor := dev.Major, dev.Minor
		res.Devices = append(res.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms})
	}
	return nil
}

// hostDevice describes the device node at path.
func hostDevice(path string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return specs.LinuxDevice{}, fmt.Errorf("%q: %w", path, fs.ErrNotExist)
		}
		return specs.LinuxDevice{}, fmt.Errorf("%q: %w", path, err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("%q is not a device node", path)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// Resources translates CRI resources alone, for UpdateContainerResources;
// hugetlb says whether the node has a hugetlb cgroup controller.
func Resources(r *runtimeapi.LinuxContainerResources, hugetlb bool) (*specs.LinuxResources, error) {
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	if err := applyResources(spec, r, 0, hugetlb); err != nil {
		return nil, err
	}
	return spec.Linux.Resources, nil
}
