package ocispec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
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
	if err := checkResources(r); err != nil {
		return err
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
	for _, h := range r.GetHugepageLimits() {
		if !hugetlb {
			break
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

// Bounds the kernel puts on CPU settings (kernel/sched: a CFS period of
// 1 ms to 1 s, a quota of at least 1 ms and below 2^44 µs) and kubelet on
// shares (MaxShares), and oom_score_adj's range.
const (
	minCPUPeriod = 1000
	maxCPUPeriod = 1000000
	minCPUQuota  = 1000
	maxCPUQuota  = 1<<44 - 1
	maxCPUShares = 262144
	minOOMAdj    = -1000
	maxOOMAdj    = 1000
)

// hugepageSize is a page size as kubelet writes it: "2MB", "1GB", "64KB".
var hugepageSize = regexp.MustCompile(`^[1-9][0-9]{0,5}(KB|MB|GB|TB|PB)$`)

// checkResources refuses CRI resources the kernel would refuse or that
// mean nothing, naming the field: 0 leaves a setting unset; a cpu_quota of
// -1 is the kernel's "no limit".
func checkResources(r *runtimeapi.LinuxContainerResources) error {
	const f = "linux.resources."
	if s := r.GetCpuShares(); s < 0 || s > maxCPUShares {
		return errdefs.InvalidArgument(f+"cpu_shares %d is out of range (0 to %d)", s, maxCPUShares)
	}
	if q := r.GetCpuQuota(); q < -1 || (q > 0 && q < minCPUQuota) || q > maxCPUQuota {
		return errdefs.InvalidArgument(f+"cpu_quota %d is out of range (0 or -1 for no limit, else %d to %d µs)", q, minCPUQuota, int64(maxCPUQuota))
	}
	if p := r.GetCpuPeriod(); p < 0 || (p > 0 && (p < minCPUPeriod || p > maxCPUPeriod)) {
		return errdefs.InvalidArgument(f+"cpu_period %d is out of range (0 for the default, else %d to %d µs)", p, minCPUPeriod, maxCPUPeriod)
	}
	if a := r.GetOomScoreAdj(); a < minOOMAdj || a > maxOOMAdj {
		return errdefs.InvalidArgument(f+"oom_score_adj %d is out of range (%d to %d)", a, minOOMAdj, maxOOMAdj)
	}
	if m := r.GetMemoryLimitInBytes(); m < 0 {
		return errdefs.InvalidArgument(f+"memory_limit_in_bytes %d is negative", m)
	}
	if s := r.GetMemorySwapLimitInBytes(); s < -1 {
		return errdefs.InvalidArgument(f+"memory_swap_limit_in_bytes %d is out of range (-1 for no limit)", s)
	}
	for i, h := range r.GetHugepageLimits() {
		if !hugepageSize.MatchString(h.GetPageSize()) {
			return errdefs.InvalidArgument(f+"hugepage_limits[%d].page_size %q is not a page size such as 2MB or 1GB", i, clip(h.GetPageSize()))
		}
	}
	return nil
}

// applyDevices adds the request's devices (a privileged container gets
// every host device instead) and the device cgroup rules.
func applyDevices(spec *specs.Spec, in Input) error {
	sc := in.Config.cri.GetLinux().GetSecurityContext()
	res := spec.Linux.Resources
	if sc.GetPrivileged() {
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
	res.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for i, d := range in.Config.cri.GetDevices() {
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
