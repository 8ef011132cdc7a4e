package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/config"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/ocicli"
	"github.com/crib-runtime/crib/sandbox"
)

// runtimeHandlers resolves [runtime.handlers.*]: each runtime's executable
// (a name is looked up in $PATH), its state directory (made here), and
// what it can do: the runtime's "features" answer, or the config's word
// where it has one, and never more than the kernel gives (rro). Whether
// the node can give pods user namespaces is known later (withNodeUserNS).
// A handler whose runtime cannot be found stops cribd: pods of its
// RuntimeClass could never start.
func runtimeHandlers(cfg config.Config, rro bool, probe func(string) (ocicli.Features, error), log logrus.FieldLogger) (map[string]sandbox.Handler, error) {
	out := make(map[string]sandbox.Handler, len(cfg.Runtime.Handlers))
	for _, name := range cfg.Runtime.HandlerNames() {
		h := cfg.Runtime.Handlers[name]
		key := "runtime.handlers." + name
		path, err := exec.LookPath(h.RuntimePath)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key+".runtime_path", err)
		}
		if path, err = filepath.Abs(path); err != nil {
			return nil, fmt.Errorf("key %q: %w", key+".runtime_path", err)
		}
		root := h.Root(cfg.RunDir, name)
		if err := os.MkdirAll(root, 0o711); err != nil {
			return nil, fmt.Errorf("key %q: %w", key+".runtime_root", err)
		}
		feat, err := probe(path)
		if err != nil {
			log.WithError(err).WithField("handler", name).Info("runtime handler: no features reported; taking it to have no user namespaces and no recursive read-only mounts unless its config says so")
		}
		if h.UserNamespaces != nil {
			feat.UserNamespaces = *h.UserNamespaces
		}
		if h.RecursiveReadOnlyMounts != nil {
			feat.RecursiveReadOnlyMounts = *h.RecursiveReadOnlyMounts
		}
		out[name] = sandbox.Handler{
			Runtime:                 shimapi.Runtime{Handler: name, Path: path, Root: root},
			UserNamespaces:          feat.UserNamespaces,
			RecursiveReadOnlyMounts: feat.RecursiveReadOnlyMounts && rro,
		}
		log.WithFields(logrus.Fields{
			"handler": name, "runtime": path, "root": root,
			"user_namespaces": feat.UserNamespaces, "recursive_read_only_mounts": feat.RecursiveReadOnlyMounts && rro,
		}).Info("runtime handler")
	}
	return out, nil
}

// withNodeUserNS returns handlers with user namespaces only where the node
// can give pods their own as well.
func withNodeUserNS(handlers map[string]sandbox.Handler, userns bool) map[string]sandbox.Handler {
	out := maps.Clone(handlers)
	for name, h := range out {
		h.UserNamespaces = h.UserNamespaces && userns
		out[name] = h
	}
	return out
}
