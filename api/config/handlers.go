package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
)

// Handler is a runtime handler ([runtime.handlers.NAME]): pods whose
// RunPodSandbox names it (kubelet: a RuntimeClass's handler) run their
// containers through an external OCI runtime's runc-compatible CLI. The
// pod's sandbox (crib-pause) stays crib's own.
type Handler struct {
	// RuntimeType is the kind of runtime; "oci" (the default) is the only
	// one: a runc-compatible command line.
	RuntimeType string `toml:"runtime_type"`
	// RuntimePath is the runtime's executable: an absolute path, or a
	// name cribd looks up in $PATH at start.
	RuntimePath string `toml:"runtime_path"`
	// RuntimeRoot is the runtime's state directory (its --root); empty
	// means <run_dir>/runtimes/<name>.
	RuntimeRoot string `toml:"runtime_root"`
	// UserNamespaces and RecursiveReadOnlyMounts, when set, say whether
	// the runtime can run pods with user namespaces of their own (through
	// idmapped mounts) and make recursive read-only mounts, overriding
	// what cribd learns from the runtime's "features" command (a runtime
	// without it is taken to have neither). The node must be able to as
	// well.
	UserNamespaces          *bool `toml:"user_namespaces,omitempty"`
	RecursiveReadOnlyMounts *bool `toml:"recursive_read_only_mounts,omitempty"`
}

// handlerName is what Kubernetes allows as a RuntimeClass handler: a DNS
// label.
var handlerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Root returns the handler's runtime state directory, named name, under
// runDir unless RuntimeRoot says otherwise.
func (h Handler) Root(runDir, name string) string {
	if h.RuntimeRoot != "" {
		return h.RuntimeRoot
	}
	return filepath.Join(runDir, "runtimes", name)
}

// HandlerNames returns the configured handlers' names, sorted.
func (r Runtime) HandlerNames() []string {
	names := make([]string, 0, len(r.Handlers))
	for n := range r.Handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r Runtime) validateHandlers() error {
	for _, name := range r.HandlerNames() {
		h := r.Handlers[name]
		key := "runtime.handlers." + name
		if !handlerName.MatchString(name) {
			return fmt.Errorf("key %q: %q is not a DNS label (lower-case letters, digits and '-', at most 63), as a RuntimeClass handler must be", key, name)
		}
		switch h.RuntimeType {
		case "", "oci":
		default:
			return fmt.Errorf("key %q: %q is not oci, the only runtime type", key+".runtime_type", h.RuntimeType)
		}
		if h.RuntimePath == "" {
			return fmt.Errorf("key %q: the runtime's executable is required", key+".runtime_path")
		}
		if h.RuntimeRoot != "" && !filepath.IsAbs(h.RuntimeRoot) {
			return fmt.Errorf("key %q: %q is not an absolute path", key+".runtime_root", h.RuntimeRoot)
		}
	}
	return nil
}
