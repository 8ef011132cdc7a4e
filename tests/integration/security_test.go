//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProcMountUnmasked: kubelet sends its default masked and read-only
// paths for procMount Default and empty lists for Unmasked, which arrive
// as no lists at all. In a pod user namespace the Default container has
// /proc/keys and /proc/timer_list masked (this kernel has no /proc/kcore)
// and /proc/sys read-only; the Unmasked one sees /proc
// as mounted, with nothing over it.
func TestProcMountUnmasked(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	pod := podConfig("procmount")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	nsOpts := map[string]any{"userns_options": usernsOptions()}
	pod["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": nsOpts}}
	podID := h.RunPod(pod)

	kubeletMasked := []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	kubeletReadonly := []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	// Mount points below /proc, and whether /proc/sys is writable.
	const probe = "awk '$2 ~ \"^/proc/\" {print \"mount\", $2}' /proc/self/mounts; grep -q ' /proc/sys [^ ]* ro,' /proc/self/mounts && echo sys-ro || echo sys-rw"
	for _, tc := range []struct {
		name              string
		masked, readonly  []string
		wantMounts        []string
		wantSys, notMount string
	}{
		{"default", kubeletMasked, kubeletReadonly, []string{"mount /proc/keys", "mount /proc/timer_list", "mount /proc/sys"}, "sys-ro", ""},
		{"unmasked", []string{}, []string{}, nil, "sys-rw", "mount /proc/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctr := shellContainer(tc.name, "exec sleep 600")
			ctr["linux"] = map[string]any{"security_context": map[string]any{
				"namespace_options": nsOpts, "masked_paths": tc.masked, "readonly_paths": tc.readonly,
			}}
			id := h.CreateContainer(podID, ctr, pod)
			h.Crictl("start", id)
			h.waitContainerState(id, "CONTAINER_RUNNING")
			out := h.Crictl("exec", "-s", id, "sh", "-c", probe)
			for _, want := range append(tc.wantMounts, tc.wantSys) {
				if !strings.Contains(out, want+"\n") {
					t.Errorf("container lacks %q:\n%s", want, out)
				}
			}
			if tc.notMount != "" && strings.Contains(out, tc.notMount) {
				t.Errorf("unmasked container has mounts over /proc:\n%s", out)
			}
			h.Crictl("rm", "-f", id)
		})
	}
	h.Crictl("rmp", "-f", podID)
}

// TestPodDefaultSysctls: a non-root container can listen on port 80 in a
// pod with its own network namespace (net.ipv4.ip_unprivileged_port_start
// is 0, ping_group_range open); a pod's own sysctls win; with
// runtime.pod_default_sysctls = false it cannot.
func TestPodDefaultSysctls(t *testing.T) {
	for _, tc := range []struct {
		name      string
		runtime   string
		sysctls   map[string]string
		wantStart string
		wantPing  string // "" skips the check
		wantBind  bool
	}{
		{"defaults", "", nil, "0", "0\t2147483647", true},
		{"pod's own win", "", map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024"}, "1024", "0\t2147483647", false},
		{"turned off", "pod_default_sysctls = false", nil, "1024", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := startRegistry(t, RegistryOptions{})
			conf := filepath.Join(t.TempDir(), "registries.conf")
			if err := os.WriteFile(conf, []byte(registriesConf(reg.Addr, "")), 0o644); err != nil {
				t.Fatal(err)
			}
			h := start(t, Options{RuntimeConfig: tc.runtime, ExtraConfig: fmt.Sprintf("\n[image]\nregistries_conf = %q\n", conf)})
			h.Crictl("pull", "busybox")
			pod := podConfig("sysctl")
			pod["log_directory"] = filepath.Join(h.Dir, "logs")
			if tc.sysctls != nil {
				pod["linux"] = map[string]any{"sysctls": tc.sysctls}
			}
			podID := h.RunPod(pod)
			ctr := shellContainer("web", "exec sleep 600")
			ctr["linux"] = map[string]any{"security_context": map[string]any{"run_as_user": map[string]any{"value": 65534}}}
			id := h.CreateContainer(podID, ctr, pod)
			h.Crictl("start", id)
			h.waitContainerState(id, "CONTAINER_RUNNING")
			read := func(key string) string {
				return strings.TrimSpace(h.Crictl("exec", "-s", id, "cat", "/proc/sys/net/ipv4/"+key))
			}
			if got := read("ip_unprivileged_port_start"); got != tc.wantStart {
				t.Errorf("ip_unprivileged_port_start %q, want %q", got, tc.wantStart)
			}
			if got := read("ping_group_range"); tc.wantPing != "" && got != tc.wantPing {
				t.Errorf("ping_group_range %q, want %q", got, tc.wantPing)
			}
			// httpd binds before it detaches: it exits 0 only if it could.
			if got := strings.TrimSpace(h.Crictl("exec", "-s", id, "id", "-u")); got != "65534" {
				t.Fatalf("exec runs as user %q, want 65534", got)
			}
			_, stderr, err := h.crictlRaw("exec", "-s", id, "httpd", "-p", "80")
			if bound := err == nil; bound != tc.wantBind {
				t.Errorf("user 65534 listening on port 80: bound %v (%v: %s), want %v", bound, err, stderr, tc.wantBind)
			}
			h.Crictl("rmp", "-f", podID)
		})
	}
}
