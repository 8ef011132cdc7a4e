//go:build node

package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The node's crib config (crib.service reads the default path).
const cribConfig = "/etc/crib/crib.toml"

// withCgroupDriver restarts crib.service with runtime.cgroup_driver set to
// driver and, when the test ends, restarts it as it was.
func withCgroupDriver(t *testing.T, driver string) {
	t.Helper()
	old, err := os.ReadFile(cribConfig)
	had := err == nil
	if err := os.MkdirAll(filepath.Dir(cribConfig), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cribConfig, []byte("[runtime]\ncgroup_driver = \""+driver+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if had {
			_ = os.WriteFile(cribConfig, old, 0o644)
		} else {
			_ = os.Remove(cribConfig)
		}
		_, _, _ = runRaw("systemctl", "restart", "crib.service")
	})
	run(t, "systemctl", "restart", "crib.service")
}

// cgroupPod runs a pod with the given cgroup parent ("" for crib's
// default) and a busybox container limited to 64 MiB and half a CPU; it
// returns both IDs.
func cgroupPod(t *testing.T, name, parent string) (pod, ctr string) {
	t.Helper()
	dir := t.TempDir()
	linux := map[string]any{}
	if parent != "" {
		linux["cgroup_parent"] = parent
	}
	podCfg := map[string]any{
		"metadata":      map[string]any{"name": name, "uid": "uid-" + name, "namespace": "node", "attempt": 0},
		"log_directory": filepath.Join(dir, "logs"),
		"linux":         linux,
	}
	ctrCfg := map[string]any{
		"metadata": map[string]any{"name": "sleeper"},
		"image":    map[string]any{"image": "busybox"},
		"command":  []string{"sleep", "600"},
		"log_path": "sleeper.log",
		"linux": map[string]any{"resources": map[string]any{
			"memory_limit_in_bytes": 64 << 20, "cpu_period": 100000, "cpu_quota": 50000,
		}},
	}
	write := func(name string, v any) string {
		b, _ := json.Marshal(v)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	podFile, ctrFile := write("pod.json", podCfg), write("ctr.json", ctrCfg)
	crictl(t, "pull", "busybox")
	pod = crictl(t, "runp", podFile)
	t.Cleanup(func() {
		_, _, _ = runRaw("crictl", "stopp", pod)
		_, _, _ = runRaw("crictl", "rmp", pod)
	})
	ctr = crictl(t, "create", pod, ctrFile, podFile)
	startContainer(t, ctr)
	return pod, ctr
}

// cribUnits lists the units on the node crib may have made: its scopes,
// its default slice, and kubelet-style slices (no kubelet runs here).
func cribUnits(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(run(t, "systemctl", "list-units", "--all", "--no-legend", "--plain"), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (strings.HasPrefix(f[0], "crib-") && strings.HasSuffix(f[0], ".scope") ||
			f[0] == "crib.slice" || strings.HasPrefix(f[0], "kubepods")) {
			out = append(out, line)
		}
	}
	return out
}

// newSince is what now holds that before did not: kubelet's own QoS slices
// and cgroups, left by an earlier kubelet scenario, are not crib's.
func newSince(before, now []string) []string {
	var out []string
	for _, s := range now {
		if !slices.Contains(before, s) {
			out = append(out, s)
		}
	}
	return out
}

// cribCgroups lists crib's default parent and kubelet-style cgroups left
// at the top of the unified hierarchy, under either driver.
func cribCgroups() []string {
	var out []string
	for _, pat := range []string{"/sys/fs/cgroup/crib*", "/sys/fs/cgroup/kubepods*"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	return out
}

// TestSystemdCgroupDriver: with cgroup_driver = "systemd", a pod in
// kubelet's kind of slice (which crib makes, as no kubelet did) and a pod
// in crib's default crib.slice: the pause process and the container run in
// crib-<id>.scope units in the slice, the container's limits are unit
// properties and cgroup files, and once both are removed no scope, slice
// or cgroup crib made is left.
func TestSystemdCgroupDriver(t *testing.T) {
	dumpOnFailure(t)
	withCgroupDriver(t, "systemd")
	unitsBefore, cgroupsBefore := cribUnits(t), cribCgroups()
	for _, tc := range []struct{ parent, slice, dir string }{
		{"kubepods-besteffort-pod1234.slice", "kubepods-besteffort-pod1234.slice",
			"/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice"},
		{"", "crib.slice", "/sys/fs/cgroup/crib.slice"},
	} {
		pod, ctr := cgroupPod(t, "sd-"+strings.TrimSuffix(tc.slice, ".slice"), tc.parent)
		t.Logf("systemctl status %s:\n%s", tc.slice, run(t, "systemctl", "status", "--no-pager", tc.slice))
		for _, id := range []string{pod, ctr} {
			if got := strings.TrimSpace(run(t, "systemctl", "show", "-P", "Slice", "crib-"+id+".scope")); got != tc.slice {
				t.Errorf("crib-%s.scope is in slice %q, want %s", id[:12], got, tc.slice)
			}
		}
		scope := "crib-" + ctr + ".scope"
		if got := strings.TrimSpace(run(t, "systemctl", "show", "-P", "MemoryMax", scope)); got != "67108864" {
			t.Errorf("%s MemoryMax=%s, want 67108864", scope, got)
		}
		if got := strings.TrimSpace(run(t, "systemctl", "show", "-P", "CPUQuotaPerSecUSec", scope)); got != "500ms" {
			t.Errorf("%s CPUQuotaPerSecUSec=%s, want 500ms", scope, got)
		}
		if b, err := os.ReadFile(filepath.Join(tc.dir, scope, "memory.max")); err != nil || strings.TrimSpace(string(b)) != "67108864" {
			t.Errorf("%s/%s/memory.max: %q, %v", tc.dir, scope, b, err)
		}
		removeContainer(t, ctr)
		removePod(t, pod)
		checkGone(t, pod, ctr)
		if left := newSince(unitsBefore, cribUnits(t)); len(left) != 0 {
			t.Errorf("units left after the pod in %s was removed:\n%s", tc.slice, strings.Join(left, "\n"))
		}
		if left := newSince(cgroupsBefore, cribCgroups()); len(left) != 0 {
			t.Errorf("cgroups left after the pod in %s was removed: %v", tc.slice, left)
		}
		if _, err := os.Stat(tc.dir); !os.IsNotExist(err) {
			t.Errorf("%s is still there after its last pod was removed (%v)", tc.dir, err)
		}
	}
	// A path is no slice: InvalidArgument naming the field.
	dir := t.TempDir()
	bad := filepath.Join(dir, "pod.json")
	_ = os.WriteFile(bad, []byte(`{"metadata": {"name": "sd-bad", "uid": "uid-sd-bad", "namespace": "node"}, "linux": {"cgroup_parent": "/kubepods/pod1"}}`), 0o644)
	if _, errOut, err := runRaw("crictl", "runp", bad); err == nil || !strings.Contains(errOut, "InvalidArgument") || !strings.Contains(errOut, "linux.cgroup_parent") {
		t.Errorf("a path parent under systemd: %v %s, want InvalidArgument naming linux.cgroup_parent", err, errOut)
	}
}

// TestCgroupfsParentsOnV2: with the cgroupfs driver on cgroup v2, a pod in
// a kubelet-style /kubepods/besteffort/pod<uid> and one in crib's default
// /crib: once removed, neither parent (nor /kubepods) is left.
func TestCgroupfsParentsOnV2(t *testing.T) {
	dumpOnFailure(t)
	withCgroupDriver(t, "cgroupfs")
	cgroupsBefore := cribCgroups()
	for _, tc := range []struct{ parent, dir string }{
		{"/kubepods/besteffort/pod1234", "/sys/fs/cgroup/kubepods/besteffort/pod1234"},
		{"", "/sys/fs/cgroup/crib"},
	} {
		pod, ctr := cgroupPod(t, "fs-"+filepath.Base(tc.dir), tc.parent)
		if b, err := os.ReadFile(filepath.Join(tc.dir, ctr, "memory.max")); err != nil || strings.TrimSpace(string(b)) != "67108864" {
			t.Errorf("%s/%s/memory.max: %q, %v", tc.dir, ctr[:12], b, err)
		}
		removeContainer(t, ctr)
		removePod(t, pod)
		checkGone(t, pod, ctr)
		if left := newSince(cgroupsBefore, cribCgroups()); len(left) != 0 {
			t.Errorf("cgroups left after the pod in %s was removed: %v", tc.dir, left)
		}
		if _, err := os.Stat(tc.dir); !os.IsNotExist(err) {
			t.Errorf("%s is still there after its last pod was removed (%v)", tc.dir, err)
		}
	}
}
