package config

import (
	"fmt"
	"path/filepath"
)

// CDI configures Container Device Interface devices ([cdi]): the devices
// a container names in its CRI cdi_devices field or in cdi.k8s.io/
// annotations are looked up in the CDI spec files of SpecDirs and their
// edits (device nodes, mounts, env, hooks) applied to its OCI spec.
type CDI struct {
	// Enabled turns CDI on (the default, as in containerd 2): off, a
	// container that names devices in cdi_devices is refused and
	// cdi.k8s.io/ annotations are ignored.
	Enabled bool `toml:"enabled"`
	// SpecDirs are searched for CDI spec files (*.json, *.yaml), in
	// rising priority: a device defined in two directories is taken from
	// the later one.
	SpecDirs []string `toml:"spec_dirs"`
	// PodAnnotations also honours cdi.k8s.io/ annotations of the pod,
	// for each of its containers. Off by default, as in containerd and
	// CRI-O: kubelet passes a pod's annotations as its author wrote
	// them, while container annotations come from kubelet's device
	// manager, so turning this on lets whoever may create pods on the
	// node have any device a CDI spec on it offers (and its mounts and
	// hooks), bypassing device plugins, DRA and quota.
	PodAnnotations bool `toml:"pod_annotations"`
}

func defaultCDI() CDI {
	return CDI{Enabled: true, SpecDirs: []string{"/etc/cdi", "/var/run/cdi"}}
}

func (c CDI) validate() error {
	if c.Enabled && len(c.SpecDirs) == 0 {
		return fmt.Errorf("key %q: at least one directory is needed while cdi.enabled is true", "cdi.spec_dirs")
	}
	for _, d := range c.SpecDirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("key %q: %q is not an absolute path", "cdi.spec_dirs", d)
		}
	}
	return nil
}
