//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPauseImage: with runtime.pause_image set, pods run their pause
// process from that image (pulled on first use, reported pinned), also in
// a user namespace of their own, and removing a pod removes its rootfs.
func TestPauseImage(t *testing.T) {
	reg := startRegistry(t, RegistryOptions{})
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte(registriesConf(reg.Addr, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{
		RuntimeConfig: `pause_image = "registry.k8s.io/pause:3.9"`,
		ExtraConfig:   fmt.Sprintf("\n[image]\nregistries_conf = %q\n", conf),
	})
	id := h.RunPod(podConfig("pauseimg"))
	pid := h.PausePID(id)
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || strings.TrimRight(string(cmdline), "\x00") != "/pause" {
		t.Errorf("pause command line %q (%v), want /pause from the image", cmdline, err)
	}
	if out := h.Crictl("images", "-o", "json"); !strings.Contains(out, "registry.k8s.io/pause:3.9") || !strings.Contains(out, `"pinned": true`) {
		t.Errorf("pause image not listed as pinned:\n%s", out)
	}
	h.Crictl("stopp", id)
	h.Crictl("rmp", id)

	// In a pod user namespace the image's layers are idmapped and bound
	// where the pod's root reaches them.
	pod := podConfig("pauseimg-userns")
	pod["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"userns_options": usernsOptions()}}}
	id = h.RunPod(pod)
	pid = h.PausePID(id)
	if got := hostUID(t, pid); got != fmt.Sprint(usernsHostID+65535) {
		t.Errorf("pause from the image in a user namespace runs as host UID %s, want %d", got, usernsHostID+65535)
	}
	h.Crictl("rmp", "-f", id)
	if left, _ := filepath.Glob(filepath.Join(h.RunDir, "storage", "userns-rootfs", "*")); len(left) != 0 {
		t.Errorf("pause rootfs binds left: %v", left)
	}
	if out := h.Crictl("images", "-q"); strings.TrimSpace(out) == "" {
		t.Errorf("pause image gone after rmp")
	}
}
