//go:build node

package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// The scenarios of issue 12's "cgroup v2, first class", each checked
// against the cgroup files of the container, found from its init's
// /proc/<pid>/cgroup (so under either cgroup driver).

// criU64 is a CRI UInt64Value as crictl prints it (protojson: a string).
type criU64 struct {
	Value string `json:"value"`
}

func (v *criU64) n() uint64 {
	if v == nil {
		return 0
	}
	n, _ := strconv.ParseUint(v.Value, 10, 64)
	return n
}

type criPSI struct {
	Some *struct {
		Total string `json:"Total"`
	} `json:"Some"`
}

type criContainerStats struct {
	Cpu struct {
		UsageCoreNanoSeconds *criU64 `json:"usageCoreNanoSeconds"`
		UsageNanoCores       *criU64 `json:"usageNanoCores"`
		Psi                  *criPSI `json:"psi"`
	} `json:"cpu"`
	Memory struct {
		UsageBytes      *criU64 `json:"usageBytes"`
		WorkingSetBytes *criU64 `json:"workingSetBytes"`
		RssBytes        *criU64 `json:"rssBytes"`
		AvailableBytes  *criU64 `json:"availableBytes"`
		Psi             *criPSI `json:"psi"`
	} `json:"memory"`
}

// cgContainer creates and starts a busybox container in pod running sh -c
// script with the given CRI linux section; it returns its ID.
func cgContainer(t *testing.T, pod, name string, linux map[string]any, script string) string {
	t.Helper()
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": exampleImage},
		"command":  []string{"sh", "-c", script},
		"log_path": name + ".log",
		"linux":    linux,
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := crictl(t, "create", pod, file, shareFile("pod.json"))
	startContainer(t, id)
	return id
}

// ctrCgroup is a running container's cgroup directory.
func ctrCgroup(t testing.TB, id string) string {
	t.Helper()
	return cgroupOf(t, infoPID(t, "inspect", id))
}

// cgroupOf is the unified cgroup directory of process pid, as the host
// sees it.
func cgroupOf(t testing.TB, pid int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	path, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "0::")
	if !ok {
		t.Fatalf("/proc/%d/cgroup is not cgroup v2's: %q", pid, data)
	}
	return filepath.Join("/sys/fs/cgroup", path)
}

// cgFile is a cgroup file's content, trimmed.
func cgFile(t testing.TB, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// cgKey is a number of a "key value" cgroup file (memory.stat, cpu.stat).
func cgKey(t testing.TB, dir, name, key string) uint64 {
	t.Helper()
	for _, line := range strings.Split(cgFile(t, dir, name), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("%s/%s has no %s", dir, name, key)
	return 0
}

func cgUint(t testing.TB, dir, name string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(cgFile(t, dir, name), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// within10 fails unless got is within 10% of the cgroup's want (> 0).
func within10(t *testing.T, what string, got, want uint64) {
	t.Helper()
	diff := max(got, want) - min(got, want)
	if want == 0 || diff*10 > want {
		t.Errorf("%s: crib %d, cgroup %d: not within 10%%", what, got, want)
	}
}

// withinSamples fails unless got lies between the cgroup's two samples a
// and b (> 0), or within 10% of the nearer.
func withinSamples(t *testing.T, what string, got, a, b uint64) {
	t.Helper()
	lo, hi := min(a, b), max(a, b)
	if lo == 0 || got*10 < lo*9 || got*10 > hi*11 {
		t.Errorf("%s: crib %d, cgroup %d before and %d after: not within 10%%", what, got, a, b)
	}
}

func checkFile(t *testing.T, dir, name, want string) {
	t.Helper()
	if got := cgFile(t, dir, name); got != want {
		t.Errorf("%s/%s = %q, want %q", dir, name, got, want)
	}
}

// TestCgroup2Stats: crictl stats and statsp agree with the cgroup files
// (CPU, memory, working set = usage − inactive_file, RSS = anon, processes)
// within 10%; PSI and available bytes are reported; usage_nano_cores
// follows the CPU quota.
func TestCgroup2Stats(t *testing.T) {
	dumpOnFailure(t)
	pod := examplePod(t)
	id := cgContainer(t, pod, "work", map[string]any{"resources": map[string]any{
		"memory_limit_in_bytes": 64 << 20, "cpu_period": 100000, "cpu_quota": 20000,
	}}, "dd if=/dev/zero of=/tmp/f bs=1M count=10; while :; do :; done")
	dir := ctrCgroup(t, id)
	checkFile(t, dir, "memory.max", "67108864")
	checkFile(t, dir, "cpu.max", "20000 100000")
	// Steady before sampling: dd gone (only the shell's loop is left), or
	// its buffer and page cache change between crib's read and the test's
	// (seen under load: anon 1.3 MB in crib's sample, 128 KiB in the
	// test's a moment later).
	harness.Eventually(t, 120*time.Second, "dd done and a second of CPU used", func() (bool, string) {
		n, pids := cgKey(t, dir, "cpu.stat", "usage_usec"), cgUint(t, dir, "pids.current")
		return n > 1_000_000 && pids == 1, fmt.Sprintf("usage_usec %d, pids.current %d", n, pids)
	})

	// The cgroup files are read before and after crictl: crib's figure
	// must be within 10% of one of them, or between them (CPU time grows
	// meanwhile; the kernel may age page cache from active to inactive).
	sample := func() [4]uint64 {
		mem := cgUint(t, dir, "memory.current")
		return [4]uint64{
			cgKey(t, dir, "cpu.stat", "usage_usec") * 1000, mem,
			mem - cgKey(t, dir, "memory.stat", "inactive_file"), cgKey(t, dir, "memory.stat", "anon"),
		}
	}
	before := sample()
	var cs struct{ Stats []criContainerStats }
	crictlJSON(t, &cs, "stats", "-o", "json", "--id", id)
	after := sample()
	if len(cs.Stats) != 1 {
		t.Fatalf("crictl stats --id %s: %d entries", id, len(cs.Stats))
	}
	s := cs.Stats[0]
	for i, c := range []struct {
		what string
		got  uint64
	}{
		{"cpu usage ns", s.Cpu.UsageCoreNanoSeconds.n()},
		{"memory usage", s.Memory.UsageBytes.n()},
		{"working set", s.Memory.WorkingSetBytes.n()},
		{"rss (anon)", s.Memory.RssBytes.n()},
	} {
		withinSamples(t, c.what, c.got, before[i], after[i])
	}
	if a := s.Memory.AvailableBytes.n(); a == 0 || a > 64<<20 {
		t.Errorf("available bytes %d, want (0, 64 MiB]", a)
	}
	if s.Cpu.Psi == nil || s.Cpu.Psi.Some == nil || s.Memory.Psi == nil || s.Memory.Psi.Some == nil {
		t.Errorf("no PSI in %+v", s)
	}
	// A second sample gives the rate; the quota holds it near 0.2 core.
	harness.Eventually(t, 30*time.Second, "usage_nano_cores near the 0.2 core quota", func() (bool, string) {
		var cs struct{ Stats []criContainerStats }
		crictlJSON(t, &cs, "stats", "-o", "json", "--id", id)
		nc := cs.Stats[0].Cpu.UsageNanoCores.n()
		return nc > 100_000_000 && nc < 300_000_000, fmt.Sprintf("%d nano cores", nc)
	})

	var ps struct {
		Stats []struct {
			Linux struct {
				Cpu     struct{ UsageCoreNanoSeconds *criU64 } `json:"cpu"`
				Memory  struct{ UsageBytes *criU64 }           `json:"memory"`
				Process struct{ ProcessCount *criU64 }         `json:"process"`
			} `json:"linux"`
		}
	}
	pauseDir := cgroupOf(t, infoPID(t, "inspectp", pod))
	crictlJSON(t, &ps, "statsp", "-o", "json", "--id", pod)
	if len(ps.Stats) != 1 {
		t.Fatalf("crictl statsp --id %s: %d entries", pod, len(ps.Stats))
	}
	p := ps.Stats[0].Linux
	within10(t, "pod processes", p.Process.ProcessCount.n(), cgUint(t, pauseDir, "pids.current")+cgUint(t, dir, "pids.current"))
	within10(t, "pod memory usage", p.Memory.UsageBytes.n(), cgUint(t, pauseDir, "memory.current")+cgUint(t, dir, "memory.current"))
	if p.Cpu.UsageCoreNanoSeconds.n() < after[0] {
		t.Errorf("pod cpu %d below its container's %d", p.Cpu.UsageCoreNanoSeconds.n(), after[0])
	}
}

// TestCgroup2Namespace: a container has its own cgroup namespace, in which
// /sys/fs/cgroup (cgroup2) shows its own limits; a privileged one keeps the
// host's view, as with containerd and CRI-O.
func TestCgroup2Namespace(t *testing.T) {
	dumpOnFailure(t)
	pod := examplePod(t)
	id := cgContainer(t, pod, "own", map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 << 20}}, "exec sleep 600")
	for _, c := range []struct{ args, want string }{
		{"cat /proc/self/cgroup", "0::/"},
		{"cat /sys/fs/cgroup/memory.max", "67108864"},
		{`awk $2=="/sys/fs/cgroup"{print$3} /proc/self/mounts`, "cgroup2"},
	} {
		if got := execIn(t, id, strings.Fields(c.args)...); got != c.want {
			t.Errorf("%s in the container: %q, want %q", c.args, got, c.want)
		}
	}
	priv := cgContainer(t, pod, "priv", map[string]any{"security_context": map[string]any{"privileged": true}}, "exec sleep 600")
	dir := ctrCgroup(t, priv)
	if got, want := execIn(t, priv, "cat", "/proc/self/cgroup"), "0::"+strings.TrimPrefix(dir, "/sys/fs/cgroup"); got != want {
		t.Errorf("privileged container's /proc/self/cgroup: %q, want the host's %q", got, want)
	}
}

// TestCgroup2Resources: swap from memory_swap_limit_in_bytes (memory +
// swap, converted to memory.swap.max) and from kubelet's LimitedSwap on v2
// (unified memory.swap.max), none without a swap limit; memory QoS through
// unified; hugetlb.<size>.max; UpdateContainerResources.
func TestCgroup2Resources(t *testing.T) {
	dumpOnFailure(t)
	pod := examplePod(t)
	id := cgContainer(t, pod, "res", map[string]any{"resources": map[string]any{
		"memory_limit_in_bytes": 64 << 20, "memory_swap_limit_in_bytes": 96 << 20,
		"hugepage_limits": []map[string]any{{"page_size": "2MB", "limit": 0}},
		"unified":         map[string]string{"memory.min": "8388608", "memory.high": "50331648"},
	}}, "exec sleep 600")
	dir := ctrCgroup(t, id)
	checkFile(t, dir, "memory.swap.max", "33554432")
	checkFile(t, dir, "memory.min", "8388608")
	checkFile(t, dir, "memory.high", "50331648")
	checkFile(t, dir, "hugetlb.2MB.max", "0")
	ls := cgContainer(t, pod, "limitedswap", map[string]any{"resources": map[string]any{
		"memory_limit_in_bytes": 64 << 20, "unified": map[string]string{"memory.swap.max": "16777216"},
	}}, "exec sleep 600")
	checkFile(t, ctrCgroup(t, ls), "memory.swap.max", "16777216")
	noswap := cgContainer(t, pod, "noswap", map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 << 20}}, "exec sleep 600")
	checkFile(t, ctrCgroup(t, noswap), "memory.swap.max", "0")

	crictl(t, "update", "--memory", strconv.Itoa(128<<20), "--cpu-quota", "50000", "--cpu-period", "100000", id)
	checkFile(t, dir, "memory.max", "134217728")
	checkFile(t, dir, "cpu.max", "50000 100000")
	if got := execIn(t, id, "cat", "/sys/fs/cgroup/memory.max"); got != "134217728" {
		t.Errorf("memory.max in the container after update: %q", got)
	}
}

// TestCgroup2OOM: a container far over its 32 MiB limit is OOM killed and
// reported as OOMKilled with exit code 137 (memory.events' oom_kill).
func TestCgroup2OOM(t *testing.T) {
	dumpOnFailure(t)
	pod := examplePod(t)
	id := cgContainer(t, pod, "oom", map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 32 << 20}}, "tail /dev/zero")
	var st struct {
		Status struct {
			State    string `json:"state"`
			Reason   string `json:"reason"`
			ExitCode int    `json:"exitCode"`
		} `json:"status"`
	}
	harness.Eventually(t, 2*time.Minute, "the container exited", func() (bool, string) {
		crictlJSON(t, &st, "inspect", "-o", "json", id)
		return st.Status.State == "CONTAINER_EXITED", st.Status.State
	})
	if st.Status.Reason != "OOMKilled" || st.Status.ExitCode != 137 {
		t.Errorf("container status %+v, want OOMKilled, 137", st.Status)
	}
}
