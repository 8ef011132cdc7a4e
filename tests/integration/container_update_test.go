//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cgroupFile reads file in the v1 cgroup of pid for the hierarchy whose
// controllers include controller.
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[1], parts[2], file))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup: %s", pid, controller, data)
	return ""
}

// TestUpdateContainerResources: crictl update changes a running
// container's memory and CPU limits in its cgroup files, lowering and
// raising them.
func TestUpdateContainerResources(t *testing.T) {
	h, podID, pod := containerPod(t)
	cfg := shellContainer("upd", "exec sleep 600")
	cfg["linux"] = map[string]any{"resources": map[string]any{
		"memory_limit_in_bytes": 128 << 20, "cpu_period": 100000, "cpu_quota": 20000,
	}}
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	pid := h.waitContainerState(id, "CONTAINER_RUNNING").Info.Pid
	check := func(when, mem, quota string) {
		t.Helper()
		if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != mem {
			t.Errorf("%s: memory.limit_in_bytes %s, want %s", when, got, mem)
		}
		if got := cgroupFile(t, pid, "cpu", "cpu.cfs_quota_us"); got != quota {
			t.Errorf("%s: cpu.cfs_quota_us %s, want %s", when, got, quota)
		}
		r := h.InspectContainer(id).Status.Resources.Linux
		unquote := func(b []byte) string { return strings.Trim(string(b), `"`) }
		if unquote(r.MemoryLimitInBytes) != mem || unquote(r.CPUQuota) != quota {
			t.Errorf("%s: ContainerStatus resources memory %s, cpu quota %s; want %s, %s",
				when, r.MemoryLimitInBytes, r.CPUQuota, mem, quota)
		}
	}
	check("created", fmt.Sprint(128<<20), "20000")

	h.Crictl("update", "--memory", fmt.Sprint(64<<20), "--cpu-period", "100000", "--cpu-quota", "50000", id)
	check("lowered memory", fmt.Sprint(64<<20), "50000")
	// Raising the limit past the old swap limit (set equal to it) works
	// too.
	h.Crictl("update", "--memory", fmt.Sprint(256<<20), "--cpu-period", "100000", "--cpu-quota", "150000", id)
	check("raised memory", fmt.Sprint(256<<20), "150000")
	if st := h.InspectContainer(id); st.Status.State != "CONTAINER_RUNNING" || st.Info.Pid != pid {
		t.Errorf("after updates: %s pid %d, want running pid %d", st.Status.State, st.Info.Pid, pid)
	}
	h.Crictl("rmp", "-f", podID)
}
