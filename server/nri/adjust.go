package nri

import (
	"fmt"
	"slices"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/runtime-tools/generate"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// applyAdjustment changes spec as plugins asked in adj. NRI's own generate
// package does the work, so the rules (removal markers, mount order and
// propagation, env replacing) are the ones containerd and CRI-O follow;
// specGen is the OCI spec editor it drives, written over crib's spec
// instead of runtime-tools'. CDI devices a plugin adds are injected through
// cdi, the node's CDI registry (nil is CDI off: refused). What crib cannot
// do yet is refused, not dropped: block I/O and RDT classes.
func applyAdjustment(spec *specs.Spec, adj *api.ContainerAdjustment, cdi ocispec.CDI) error {
	if adj == nil {
		return nil
	}
	g := generate.SpecGenerator(&specGen{spec: spec},
		generate.WithCDIDeviceInjector(func(s *specs.Spec, names []string) error {
			if cdi == nil {
				return errdefs.FailedPrecondition("NRI adjustment: CDI devices %s: CDI is off on this node (cdi.enabled = false)", strings.Join(names, ", "))
			}
			if _, err := cdi.Inject(s, names); err != nil {
				return fmt.Errorf("NRI adjustment: %w", err)
			}
			return nil
		}),
		generate.WithBlockIOResolver(func(class string) (*specs.LinuxBlockIO, error) {
			return nil, errdefs.FailedPrecondition("NRI adjustment: block I/O class %q: crib has no block I/O classes", class)
		}),
		generate.WithRdtResolver(func(class string) (*specs.LinuxIntelRdt, error) {
			return nil, errdefs.FailedPrecondition("NRI adjustment: RDT class %q: crib has no RDT classes", class)
		}),
	)
	if err := g.Adjust(adj); err != nil {
		return fmt.Errorf("apply NRI adjustment: %w", err)
	}
	return nil
}

// specGen edits an OCI spec in place for generate.Generator: the subset of
// runtime-tools' generator NRI uses, with its semantics (an added device,
// namespace or sysctl replaces one of the same path, type or key).
type specGen struct{ spec *specs.Spec }

var _ generate.UnderlyingGenerator = (*specGen)(nil)

func (g *specGen) Spec() *specs.Spec { return g.spec }

func (g *specGen) process() *specs.Process {
	if g.spec.Process == nil {
		g.spec.Process = &specs.Process{}
	}
	return g.spec.Process
}

func (g *specGen) linux() *specs.Linux {
	if g.spec.Linux == nil {
		g.spec.Linux = &specs.Linux{}
	}
	return g.spec.Linux
}

func (g *specGen) resources() *specs.LinuxResources {
	l := g.linux()
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	return l.Resources
}

func (g *specGen) cpu() *specs.LinuxCPU {
	r := g.resources()
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}

func (g *specGen) memory() *specs.LinuxMemory {
	r := g.resources()
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func (g *specGen) hooks() *specs.Hooks {
	if g.spec.Hooks == nil {
		g.spec.Hooks = &specs.Hooks{}
	}
	return g.spec.Hooks
}

func (g *specGen) AddAnnotation(key, value string) {
	if g.spec.Annotations == nil {
		g.spec.Annotations = map[string]string{}
	}
	g.spec.Annotations[key] = value
}

func (g *specGen) RemoveAnnotation(key string) { delete(g.spec.Annotations, key) }

func (g *specGen) AddDevice(d specs.LinuxDevice) {
	l := g.linux()
	for i := range l.Devices {
		if l.Devices[i].Path == d.Path {
			l.Devices[i] = d
			return
		}
	}
	l.Devices = append(l.Devices, d)
}

func (g *specGen) RemoveDevice(path string) {
	if g.spec.Linux == nil {
		return
	}
	g.spec.Linux.Devices = slices.DeleteFunc(g.spec.Linux.Devices, func(d specs.LinuxDevice) bool { return d.Path == path })
}

func (g *specGen) AddLinuxResourcesDevice(allow bool, devType string, major, minor *int64, access string) {
	r := g.resources()
	r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: allow, Type: devType, Major: major, Minor: minor, Access: access})
}

func (g *specGen) AddOrReplaceLinuxNamespace(ns, path string) error {
	typ, err := namespaceType(ns)
	if err != nil {
		return err
	}
	l := g.linux()
	for i := range l.Namespaces {
		if l.Namespaces[i].Type == typ {
			l.Namespaces[i].Path = path
			return nil
		}
	}
	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
	return nil
}

func (g *specGen) RemoveLinuxNamespace(ns string) error {
	typ, err := namespaceType(ns)
	if err != nil {
		return err
	}
	if g.spec.Linux != nil {
		g.spec.Linux.Namespaces = slices.DeleteFunc(g.spec.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ })
	}
	return nil
}

// namespaceType checks a namespace type a plugin names; runtime-tools
// takes "net" for "network" as well.
func namespaceType(ns string) (specs.LinuxNamespaceType, error) {
	if ns == "net" {
		ns = string(specs.NetworkNamespace)
	}
	switch t := specs.LinuxNamespaceType(ns); t {
	case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
		return t, nil
	}
	return "", errdefs.InvalidArgument("NRI adjustment: %q is not a Linux namespace type", ns)
}

func (g *specGen) AddPreStartHook(h specs.Hook) {
	g.hooks().Prestart = append(g.hooks().Prestart, h) //nolint:staticcheck // NRI plugins may still ask for prestart hooks.
}

func (g *specGen) AddPostStartHook(h specs.Hook) {
	g.hooks().Poststart = append(g.hooks().Poststart, h)
}

func (g *specGen) AddPostStopHook(h specs.Hook) { g.hooks().Poststop = append(g.hooks().Poststop, h) }

func (g *specGen) AddProcessEnv(name, value string) {
	p := g.process()
	prefix := name + "="
	for i, e := range p.Env {
		if strings.HasPrefix(e, prefix) {
			p.Env[i] = prefix + value
			return
		}
	}
	p.Env = append(p.Env, prefix+value)
}

func (g *specGen) ClearProcessEnv() {
	if g.spec.Process != nil {
		g.spec.Process.Env = nil
	}
}

func (g *specGen) SetProcessArgs(args []string) { g.process().Args = args }

func (g *specGen) SetProcessOOMScoreAdj(adj int) { g.process().OOMScoreAdj = &adj }

func (g *specGen) AddLinuxResourcesHugepageLimit(pageSize string, limit uint64) {
	r := g.resources()
	for i := range r.HugepageLimits {
		if r.HugepageLimits[i].Pagesize == pageSize {
			r.HugepageLimits[i].Limit = limit
			return
		}
	}
	r.HugepageLimits = append(r.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: pageSize, Limit: limit})
}

func (g *specGen) AddLinuxResourcesUnified(key, val string) {
	r := g.resources()
	if r.Unified == nil {
		r.Unified = map[string]string{}
	}
	r.Unified[key] = val
}

func (g *specGen) AddMount(m specs.Mount) { g.spec.Mounts = append(g.spec.Mounts, m) }

func (g *specGen) RemoveMount(dest string) {
	g.spec.Mounts = slices.DeleteFunc(g.spec.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
}

func (g *specGen) ClearMounts() { g.spec.Mounts = nil }

func (g *specGen) Mounts() []specs.Mount { return g.spec.Mounts }

func (g *specGen) AddLinuxSysctl(key, value string) {
	l := g.linux()
	if l.Sysctl == nil {
		l.Sysctl = map[string]string{}
	}
	l.Sysctl[key] = value
}

func (g *specGen) RemoveLinuxSysctl(key string) {
	if g.spec.Linux != nil {
		delete(g.spec.Linux.Sysctl, key)
	}
}

func (g *specGen) SetLinuxCgroupsPath(path string) { g.linux().CgroupsPath = path }

func (g *specGen) SetLinuxResourcesCPUCpus(cpus string) { g.cpu().Cpus = cpus }

func (g *specGen) SetLinuxResourcesCPUMems(mems string) { g.cpu().Mems = mems }

func (g *specGen) SetLinuxResourcesCPUPeriod(period uint64) { g.cpu().Period = &period }

func (g *specGen) SetLinuxResourcesCPUQuota(quota int64) { g.cpu().Quota = &quota }

func (g *specGen) SetLinuxResourcesCPURealtimePeriod(period uint64) {
	g.cpu().RealtimePeriod = &period
}

func (g *specGen) SetLinuxResourcesCPURealtimeRuntime(rt int64) { g.cpu().RealtimeRuntime = &rt }

func (g *specGen) SetLinuxResourcesCPUShares(shares uint64) { g.cpu().Shares = &shares }

func (g *specGen) SetLinuxResourcesMemoryLimit(limit int64) { g.memory().Limit = &limit }

func (g *specGen) SetLinuxResourcesMemorySwap(swap int64) { g.memory().Swap = &swap }

func (g *specGen) SetLinuxRootPropagation(rp string) error {
	switch rp {
	case "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable":
	default:
		return errdefs.InvalidArgument("NRI adjustment: %q is not a mount propagation", rp)
	}
	g.linux().RootfsPropagation = rp
	return nil
}
