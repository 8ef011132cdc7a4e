package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
)

// Handler is a runtime handler besides the default one: the external OCI
// runtime that runs the app containers of its pods, and what it can do.
// The pause container is crib's own under every handler.
type Handler struct {
	// Runtime is what the shim runs the containers with.
	Runtime shimapi.Runtime
	// UserNamespaces: pods of this handler may have user namespaces of
	// their own (the runtime and the node make idmapped mounts).
	UserNamespaces bool
	// RecursiveReadOnlyMounts: the runtime and the kernel make recursive
	// read-only mounts.
	RecursiveReadOnlyMounts bool
}

// runtimeOf returns the runtime the shim runs pod's app containers with:
// nil for the default handler (libcontainer in the shim). A pod whose
// handler is no longer configured (cribd restarted with another config)
// gets no new containers.
func (m *Manager) runtimeOf(pod *state.Sandbox) (*Handler, error) {
	if pod.RuntimeHandler == "" {
		return nil, nil
	}
	h, ok := m.opts.Handlers[pod.RuntimeHandler]
	if !ok {
		return nil, errdefs.FailedPrecondition("pod sandbox %s runs under runtime handler %q, which is no longer configured", pod.ID, pod.RuntimeHandler)
	}
	return &h, nil
}

// checkHandlerMounts refuses a recursive read-only mount when the pod's
// runtime cannot make one (the default handler's kernel check is kubelet's,
// from Status).
func checkHandlerMounts(h *Handler, spec *specs.Spec) error {
	if h == nil || h.RecursiveReadOnlyMounts {
		return nil
	}
	for _, m := range spec.Mounts {
		if slices.Contains(m.Options, "rro") {
			return errdefs.FailedPrecondition("mounts: container_path %q asks for recursive_read_only, which runtime handler %q cannot make", m.Destination, h.Runtime.Handler)
		}
	}
	return nil
}

// handlerRuntime is h's runtime for the shim's CreateRequest; nil for the
// default handler.
func handlerRuntime(h *Handler) *shimapi.Runtime {
	if h == nil {
		return nil
	}
	rt := h.Runtime
	return &rt
}

// deleteInRuntime does a shim's part for a handler's container when the
// shim is gone: the runtime's state of container id (its directory under
// the handler's --root) is deleted through the runtime, once the
// container's processes are killed and its cgroup removed. Nothing to do
// for the default handler, or when the runtime holds no such container.
func deleteInRuntime(ctx context.Context, h *Handler, id string) error {
	if h == nil {
		return nil
	}
	rt := h.Runtime
	if _, err := os.Stat(filepath.Join(rt.Root, id)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	out, err := exec.CommandContext(ctx, rt.Path, "--root", rt.Root, "delete", "--force", id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s delete %s: %w: %s", rt.Handler, id, err, strings.TrimSpace(string(out)))
	}
	return nil
}
