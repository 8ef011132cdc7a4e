//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crib-runtime/crib/tests/harness"
)

// TestCDIDevices: a container gets vendor.com/device=foo (its device
// node, env and mount) whether it names it in CDI_devices or in a
// cdi.k8s.io/ annotation, despite a broken spec file beside it, also in
// a pod user namespace; a device's hook runs; a pod's
// own annotation is ignored (cdi.pod_annotations is off by default); a
// malformed name is InvalidArgument and an unknown device
// FailedPrecondition, each naming it and leaving no container.
func TestCDIDevices(t *testing.T) {
	// The spec files are written after cribd starts: it reads none
	// until a container asks for a device.
	h, _ := imageHarness(t, "", "\n[cdi]\nspec_dirs = [\"@DIR@/no-such-dir\", \"@DIR@/cdi\"]\n")
	harness.WriteCDISpecs(t, h.Dir)

	h.Crictl("pull", "busybox")
	pod := podConfig("cdi")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	pod["annotations"] = map[string]string{"cdi.k8s.io/pod": "vendor.com/device=foo"}
	podID := h.RunPod(pod)

	for _, tc := range []struct {
		name  string
		edit  func(ctr map[string]any)
		want  []string // lines of harness.CDIProbe's output
		avoid string
	}{
		{"field", func(c map[string]any) {
			c["CDI_devices"] = []map[string]string{{"name": "vendor.com/device=foo"}}
		}, harness.CDIProbeWant, ""},
		{"annotation", func(c map[string]any) {
			c["annotations"] = map[string]string{"cdi.k8s.io/test": "vendor.com/device=foo"}
		}, harness.CDIProbeWant, ""},
		{"pod annotation only", func(map[string]any) {}, []string{"env="}, "node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctr := shellContainer(strings.ReplaceAll(tc.name, " ", "-"), "exec sleep 600")
			tc.edit(ctr)
			id := h.CreateContainer(podID, ctr, pod)
			h.Crictl("start", id)
			h.waitContainerState(id, "CONTAINER_RUNNING")
			out, _, _ := h.crictlRaw("exec", "-s", id, "sh", "-c", harness.CDIProbe)
			for _, want := range tc.want {
				if !harness.HasLine(out, want) {
					t.Errorf("container lacks %q:\n%s", want, out)
				}
			}
			if tc.avoid != "" && harness.HasLine(out, tc.avoid) {
				t.Errorf("container has %q:\n%s", tc.avoid, out)
			}
			h.Crictl("rm", "-f", id)
		})
	}

	for _, tc := range []struct {
		name string
		edit func(ctr map[string]any)
		want []string // in crictl's error
	}{
		{"malformed name", func(c map[string]any) {
			c["CDI_devices"] = []map[string]string{{"name": "vendor.com/device"}}
		}, []string{"InvalidArgument", "cdi_devices[0].name: unqualified device", "vendor.com/device"}},
		{"malformed annotation", func(c map[string]any) {
			c["annotations"] = map[string]string{"cdi.k8s.io/bad": "foo"}
		}, []string{"InvalidArgument", "annotations[", "cdi.k8s.io/bad"}},
		{"unknown device", func(c map[string]any) {
			c["CDI_devices"] = []map[string]string{{"name": "vendor.com/device=foo"}, {"name": "vendor.com/device=nope"}}
		}, []string{"FailedPrecondition", "CDI device vendor.com/device=nope is defined by no spec file", "broken.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctr := shellContainer("bad", "exec sleep 600")
			tc.edit(ctr)
			b, err := json.Marshal(ctr)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(h.Dir, "bad-ctr.json")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := h.crictlRaw("create", podID, path, h.WritePodConfig(pod))
			if err == nil {
				t.Fatal("crictl create succeeded")
			}
			msg := crictlError(stderr)
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			if ids := strings.TrimSpace(h.Crictl("ps", "-a", "-q", "--pod", podID)); ids != "" {
				t.Errorf("a refused create left containers: %s", ids)
			}
		})
	}
	// A CDI hook runs as the spec says: createRuntime, in the runtime,
	// with the container's state on stdin.
	t.Run("hook", func(t *testing.T) {
		ctr := shellContainer("hooked", "exec sleep 600")
		ctr["CDI_devices"] = []map[string]string{{"name": "vendor.com/device=hooked"}}
		id := h.CreateContainer(podID, ctr, pod)
		if state := harness.ReadFile(filepath.Join(h.Dir, "cdi-hook-ran")); !strings.Contains(state, id) {
			t.Errorf("createRuntime hook's stdin %q does not name container %s", state, id)
		}
		h.Crictl("rm", "-f", id)
	})
	// In a pod with its own user namespace the device node is bound in
	// (no mknod there) and the mount is a plain bind, readable by all.
	t.Run("user namespace", func(t *testing.T) {
		upod := podConfig("cdi-userns")
		upod["log_directory"] = filepath.Join(h.Dir, "logs")
		nsOpts := map[string]any{"userns_options": usernsOptions()}
		upod["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": nsOpts}}
		upodID := h.RunPod(upod)
		ctr := shellContainer("userns", "exec sleep 600")
		ctr["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": nsOpts}}
		ctr["CDI_devices"] = []map[string]string{{"name": "vendor.com/device=foo"}}
		id := h.CreateContainer(upodID, ctr, upod)
		h.Crictl("start", id)
		h.waitContainerState(id, "CONTAINER_RUNNING")
		out, _, _ := h.crictlRaw("exec", "-s", id, "sh", "-c", harness.CDIProbe)
		for _, want := range harness.CDIProbeWant {
			if !harness.HasLine(out, want) {
				t.Errorf("container lacks %q:\n%s", want, out)
			}
		}
		h.Crictl("rmp", "-f", upodID)
	})
	if log := h.Log(); strings.Count(log, "CDI spec file has errors") != 1 || !strings.Contains(log, "broken.json") {
		t.Errorf("cribd's log should name broken.json once:\n%s", tail(log, 20))
	}
	h.Crictl("rmp", "-f", podID)
}
