package ocispec

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/parser"

	"github.com/crib-runtime/crib/api/errdefs"
)

// CDIAnnotationPrefix starts the keys of annotations that name CDI
// devices, comma-separated, in their values (the CDI library's
// convention, which kubelet's device manager follows).
const CDIAnnotationPrefix = "cdi.k8s.io/"

// CDI applies Container Device Interface devices to a spec
// (internal/cdi.Registry is the real one). A nil CDI is CDI turned off.
type CDI interface {
	// Inject applies the edits of devices, fully qualified names, to
	// spec; a device no spec file defines is FailedPrecondition naming
	// it. It returns the host path of each device node it added, by its
	// path in the container.
	Inject(spec *specs.Spec, devices []string) (hostNodes map[string]string, err error)
}

// cdiDevices lists the CDI devices a container asks for, first once
// each: its cdi_devices, then its cdi.k8s.io/ annotations and, with
// in.CDIPodAnnotations, its pod's. A malformed name is InvalidArgument
// naming its field. With CDI off, cdi_devices is FailedPrecondition and
// the annotations are left alone, as containerd does.
func cdiDevices(in Input) ([]string, error) {
	cfg := in.Config.cri
	if in.CDI == nil {
		if n := len(cfg.GetCDIDevices()); n > 0 {
			names := make([]string, 0, n)
			for _, d := range cfg.GetCDIDevices() {
				names = append(names, d.GetName())
			}
			return nil, errdefs.FailedPrecondition("cdi_devices: CDI is off on this node (cdi.enabled = false) but the container asks for %s", strings.Join(names, ", "))
		}
		return nil, nil
	}
	var devices []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			devices = append(devices, name)
		}
	}
	for i, d := range cfg.GetCDIDevices() {
		if _, _, _, err := parser.ParseQualifiedName(d.GetName()); err != nil {
			return nil, errdefs.InvalidArgument("cdi_devices[%d].name: %v", i, err)
		}
		add(d.GetName())
	}
	fromAnnotations := func(field string, annos map[string]string) error {
		// In key order: the order devices are injected in shows in the
		// spec (device nodes, env), which should not vary from run to run.
		keys := make([]string, 0, len(annos))
		for k := range annos {
			if strings.HasPrefix(k, CDIAnnotationPrefix) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			for name := range strings.SplitSeq(annos[k], ",") {
				name = strings.TrimSpace(name)
				if _, _, _, err := parser.ParseQualifiedName(name); err != nil {
					return errdefs.InvalidArgument("%s[%q]: %v", field, k, err)
				}
				add(name)
			}
		}
		return nil
	}
	if err := fromAnnotations("annotations", cfg.GetAnnotations()); err != nil {
		return nil, err
	}
	if in.CDIPodAnnotations {
		if err := fromAnnotations("pod annotations", in.Pod.Annotations); err != nil {
			return nil, err
		}
	}
	return devices, nil
}

// applyCDI injects the container's CDI devices. It runs last in Build:
// the edits add to env, mounts, hooks, device nodes and device cgroup
// rules, which no later step may reset.
func applyCDI(spec *specs.Spec, in Input) error {
	devices, err := cdiDevices(in)
	if err != nil || len(devices) == 0 {
		return err
	}
	hostNodes, err := in.CDI.Inject(spec, devices)
	if err != nil {
		return err
	}
	if in.Pod.UserNSPath != "" {
		bindDeviceNodes(spec, hostNodes)
	}
	// A CDI mount may ask for shared or slave propagation, which needs
	// the root's to match.
	spec.Linux.RootfsPropagation = rootfsPropagation(spec.Mounts)
	return nil
}

// bindDeviceNodes turns the device nodes whose host node has another path
// into binds of that node. In a user namespace no node can be made:
// libcontainer binds each from the host path equal to its path in the
// container, which a CDI device such as /dev/null seen as /dev/vendor-foo
// does not have. The device cgroup rules stay.
func bindDeviceNodes(spec *specs.Spec, hostNodes map[string]string) {
	kept := spec.Linux.Devices[:0]
	for _, d := range spec.Linux.Devices {
		host, ok := hostNodes[d.Path]
		if !ok || host == d.Path {
			kept = append(kept, d)
			continue
		}
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: d.Path, Type: "bind", Source: host, Options: []string{"bind"}})
	}
	spec.Linux.Devices = kept
}
