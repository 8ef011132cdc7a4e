// Package cdi is cribd's Container Device Interface registry: it resolves
// fully qualified CDI device names (vendor.com/class=name) against the CDI
// spec files of the node's spec directories and applies their edits
// (device nodes, mounts, env, hooks) to a container's OCI spec. It is the
// only user of tags.cncf.io/container-device-interface.
//
// The spec directories are read only when a container asks for a device:
// the library's cache is made at the first request and refreshed at each
// later one, with no directory watch, so a node whose containers name no
// CDI device pays nothing, and a spec file a DRA driver wrote just before
// kubelet's CreateContainer is always seen.
package cdi

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	cdilib "tags.cncf.io/container-device-interface/pkg/cdi"
	cdispec "tags.cncf.io/container-device-interface/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
)

// Registry resolves CDI devices; it is safe for concurrent use.
type Registry struct {
	dirs []string
	log  logrus.FieldLogger

	mu     sync.Mutex        // serialises requests
	cache  *cdilib.Cache     // nil until the first request
	broken map[string]string // spec file -> its error as last logged
}

// New returns a registry over the spec directories dirs, in rising
// priority. It reads nothing yet.
func New(dirs []string, log logrus.FieldLogger) *Registry {
	return &Registry{dirs: slices.Clone(dirs), log: log, broken: map[string]string{}}
}

// Inject applies the edits of devices, fully qualified names, to spec.
// A device that no valid spec file defines is FailedPrecondition naming
// it; a broken spec file fails only the devices it would have defined
// (it is logged, and named in that error).
//
// It returns the host node of each device node it added, by its path in
// the container: where nodes cannot be made (a pod's user namespace) the
// runtime binds them in from the host, from the container's path unless
// told otherwise.
func (r *Registry) Inject(spec *specs.Spec, devices []string) (map[string]string, error) {
	if len(devices) == 0 {
		return nil, nil
	}
	// Held through the injection, so that the devices read back below
	// are the ones injected, not those of a later request's rescan.
	r.mu.Lock()
	defer r.mu.Unlock()
	broken := r.refresh()
	unresolved, err := r.cache.InjectDevices(spec, devices...)
	switch {
	case len(unresolved) > 0:
		msg := fmt.Sprintf("CDI device %s is defined by no spec file in %s", strings.Join(unresolved, ", "), strings.Join(r.dirs, ", "))
		if len(broken) > 0 {
			msg += fmt.Sprintf(" (spec files with errors: %s)", strings.Join(broken, ", "))
		}
		return nil, errdefs.FailedPrecondition("%s", msg)
	case err != nil:
		// The devices are known but their edits cannot be made here,
		// such as a device node missing on the host.
		return nil, errdefs.FailedPrecondition("CDI devices %s: %v", strings.Join(devices, ", "), err)
	}
	return r.hostNodes(devices), nil
}

// hostNodes maps the path in the container of each device node that
// devices add (their own, and their spec files' common ones) to its
// host's path.
func (r *Registry) hostNodes(devices []string) map[string]string {
	nodes := map[string]string{}
	add := func(edits cdispec.ContainerEdits) {
		for _, n := range edits.DeviceNodes {
			host := n.HostPath
			if host == "" {
				host = n.Path
			}
			nodes[n.Path] = host
		}
	}
	specsSeen := map[*cdilib.Spec]bool{}
	for _, name := range devices {
		d := r.cache.GetDevice(name)
		if d == nil {
			continue
		}
		if s := d.GetSpec(); !specsSeen[s] {
			specsSeen[s] = true
			add(s.ContainerEdits)
		}
		add(d.ContainerEdits)
	}
	return nodes
}

// refresh rescans the spec directories (making the cache at the first
// call) and logs the spec files that became broken or were mended since
// the last refresh. It returns the broken files. r.mu is held.
func (r *Registry) refresh() []string {
	if r.cache == nil {
		// Made with no watch, so it scans once now; manual refresh
		// rescans on every later call.
		r.cache, _ = cdilib.NewCache(cdilib.WithSpecDirs(r.dirs...), cdilib.WithAutoRefresh(false))
	} else {
		// Its error joins the spec files' errors, read per file below.
		_ = r.cache.Refresh()
	}
	now := map[string]string{}
	for path, errs := range r.cache.GetErrors() {
		now[path] = errors.Join(errs...).Error()
	}
	for path, msg := range now {
		if r.broken[path] != msg {
			r.log.WithField("file", path).Warnf("CDI spec file has errors: the devices they concern cannot be injected: %s", msg)
		}
	}
	for path := range r.broken {
		if _, ok := now[path]; !ok {
			r.log.WithField("file", path).Info("CDI spec file has no more errors (or is gone)")
		}
	}
	r.broken = now
	return slices.Sorted(maps.Keys(now))
}
