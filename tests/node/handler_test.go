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

// The runtime handlers the guest's Debian packages (crun, runc) provide,
// configured as a drop-in the way a user adds them.
const (
	handlersDropIn = "/etc/crib/crib.d/50-handlers.toml"
	crunPath       = "/usr/bin/crun"
	runcPath       = "/usr/sbin/runc"
	handlersTOML   = "[runtime.handlers.crun]\nruntime_path = \"" + crunPath + "\"\n\n" +
		"[runtime.handlers.runc]\nruntime_path = \"" + runcPath + "\"\n"
)

// handlerRoot is a handler's state root (its --root): the default
// runtime_root, <run_dir>/runtimes/<name>.
func handlerRoot(name string) string { return filepath.Join("/run/crib/runtimes", name) }

// withHandlers restarts crib.service with the crun and runc handlers
// configured in a drop-in and, when the test ends, restarts it without
// them (a pod survives the restart; the test removes its pods first).
func withHandlers(t *testing.T) {
	t.Helper()
	for _, p := range []string{crunPath, runcPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: the guest lacks it (scripts/build-guest.sh installs crun and runc)", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(handlersDropIn), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(handlersDropIn, []byte(handlersTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Remove(handlersDropIn)
		_, _, _ = runRaw("systemctl", "restart", "crib.service")
	})
	run(t, "systemctl", "restart", "crib.service")
}

// TestRuntimeHandlerCrun: crun, which cannot run on the CI host's hybrid
// cgroups, runs a pod's container on the cgroup v2 node under the systemd
// cgroup driver: crictl info lists the handlers, `crictl runp --runtime crun`
// runs the pod, the container's process is the one crun's state names,
// logs, exec with and without a terminal, stats from its cgroup (a scope
// crun asked systemd for under the systemd driver), stop's exit code; after
// removal crun knows no container and no cgroup or process is left.
func TestRuntimeHandlerCrun(t *testing.T) {
	dumpOnFailure(t)
	withHandlers(t)

	var info struct {
		RuntimeHandlers []struct {
			Name string `json:"name"`
		} `json:"runtimeHandlers"`
	}
	crictlJSON(t, &info, "info", "-o", "json")
	var names []string
	for _, h := range info.RuntimeHandlers {
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != ",crun,runc" {
		t.Fatalf("crictl info lists handlers %q, want the default, crun and runc", names)
	}
	crictl(t, "pull", "busybox")

	// One driver, kubeadm's: each crictl call takes seconds under
	// software emulation, and the handler's path is the same under both
	// but for the cgroup (a scope crun asks systemd for, here).
	withCgroupDriver(t, "systemd")
	testHandlerLifecycle(t, "crun", "systemd")
}

// testHandlerLifecycle runs a pod with one busybox container under
// runtime handler rt and checks it through crictl and the runtime's own
// CLI, then that nothing of either is left.
func testHandlerLifecycle(t *testing.T, rt, driver string) {
	start := time.Now()
	name := rt + "-" + driver
	dir := t.TempDir()
	podFile := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": name, "uid": "uid-" + name, "namespace": "node", "attempt": 0},
		"log_directory": filepath.Join(dir, "logs"),
	})
	ctrFile := writeJSON(t, dir, "ctr.json", map[string]any{
		"metadata": map[string]any{"name": "echo"},
		"image":    map[string]any{"image": "busybox"},
		"command":  []string{"sh", "-c", "echo hello; echo oops >&2; exec sleep 600"},
		"log_path": "echo.log",
	})
	pod := crictl(t, "runp", "--runtime", rt, podFile)
	t.Cleanup(func() {
		_, _, _ = runRaw("crictl", "stopp", pod)
		_, _, _ = runRaw("crictl", "rmp", pod)
	})
	var podStatus struct {
		Status struct {
			State          string `json:"state"`
			RuntimeHandler string `json:"runtimeHandler"`
		} `json:"status"`
	}
	crictlJSON(t, &podStatus, "inspectp", "-o", "json", pod)
	if podStatus.Status.State != "SANDBOX_READY" || podStatus.Status.RuntimeHandler != rt {
		t.Fatalf("crictl inspectp: %+v, want SANDBOX_READY under %s", podStatus.Status, rt)
	}

	ctr := crictl(t, "create", pod, ctrFile, podFile)
	if st := runtimeState(t, rt, ctr); st.Status != "created" {
		t.Errorf("%s state %s after create: %+v", rt, ctr, st)
	}
	crictl(t, "start", ctr)
	pid := infoPID(t, "inspect", ctr)
	if st := runtimeState(t, rt, ctr); st.Status != "running" || st.Pid != pid {
		t.Errorf("%s state %s: %+v, want running with the pid crib reports, %d", rt, ctr, st, pid)
	}
	if list := run(t, rt, "--root", handlerRoot(rt), "list"); !strings.Contains(list, ctr) {
		t.Errorf("%s list has no %s:\n%s", rt, ctr, list)
	}
	cg := strings.TrimSpace(run(t, "cat", fmt.Sprintf("/proc/%d/cgroup", pid)))
	wantCg := ctr
	if driver == "systemd" {
		wantCg = "/crib.slice/crib-" + ctr + ".scope"
		if state := strings.TrimSpace(run(t, "systemctl", "show", "-P", "ActiveState", "crib-"+ctr+".scope")); state != "active" {
			t.Errorf("crib-%s.scope is %q, want active", ctr, state)
		}
	}
	if !strings.HasPrefix(cg, "0::/") || !strings.Contains(cg, wantCg) {
		t.Errorf("container's cgroup %q: want the unified hierarchy's %s", cg, wantCg)
	}
	t.Logf("%s, %s: container pid %d in %s", rt, driver, pid, cg)

	harness.Eventually(t, 30*time.Second, "the container's lines in its log", func() (bool, string) {
		out, errOut, _ := runRaw("crictl", "logs", ctr)
		return strings.Contains(out, "hello") && strings.Contains(errOut, "oops"), out + errOut
	})
	if got := crictl(t, "exec", ctr, "echo", "via-"+rt); got != "via-"+rt {
		t.Errorf("crictl exec: %q", got)
	}
	// A terminal: crun sends its master to the console socket the shim
	// passes on. crictl exec -t wants a terminal of its own: script gives it
	// one.
	out, _, err := runRaw("script", "-qec", "crictl exec -it "+ctr+" sh -c 'tty; exit 4'", "/dev/null")
	if err == nil || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("crictl exec -it: %v, output %q: want a /dev/pts terminal and exit status 4", err, out)
	}

	cpu, mem := crictlStats(t, ctr)
	if cpu == 0 || mem == 0 {
		t.Errorf("crictl stats %s: cpu %d ns, working set %d bytes: want both non-zero", ctr, cpu, mem)
	}
	t.Logf("%s, %s: stats cpu %d ns, working set %d bytes", rt, driver, cpu, mem)

	crictl(t, "stop", "-t", "5", ctr)
	var ctrStatus struct {
		Status struct {
			State    string `json:"state"`
			ExitCode int    `json:"exitCode"`
		} `json:"status"`
	}
	crictlJSON(t, &ctrStatus, "inspect", "-o", "json", ctr)
	// sleep is not the pid namespace's init (crib-pause is): SIGTERM ends it.
	if ctrStatus.Status.State != "CONTAINER_EXITED" || ctrStatus.Status.ExitCode != 143 {
		t.Errorf("after crictl stop: %+v, want CONTAINER_EXITED with 143 (SIGTERM)", ctrStatus.Status)
	}
	if st := runtimeState(t, rt, ctr); st.Status != "stopped" {
		t.Errorf("%s state %s after stop: %+v", rt, ctr, st)
	}
	crictl(t, "rm", ctr)
	crictl(t, "stopp", pod)
	crictl(t, "rmp", pod)

	// crun lists only a header when it knows no container, and its root
	// holds a directory per container.
	if lines := strings.Split(strings.TrimSpace(run(t, rt, "--root", handlerRoot(rt), "list")), "\n"); len(lines) > 1 {
		t.Errorf("%s list after removal:\n%s", rt, strings.Join(lines, "\n"))
	}
	if left, _ := os.ReadDir(handlerRoot(rt)); len(left) != 0 {
		var n []string
		for _, e := range left {
			n = append(n, e.Name())
		}
		t.Errorf("%s holds %v after removal", handlerRoot(rt), n)
	}
	checkGone(t, pod, ctr)
	if driver == "systemd" {
		for _, u := range []string{"crib-" + pod + ".scope", "crib-" + ctr + ".scope"} {
			if state, _, _ := runRaw("systemctl", "show", "-P", "LoadState", u); strings.TrimSpace(state) != "not-found" {
				t.Errorf("unit %s after removal: LoadState %q", u, strings.TrimSpace(state))
			}
		}
	}
	t.Logf("%s, %s: lifecycle took %v", rt, driver, time.Since(start).Round(time.Second))
}

// runtimeStatus is what `<runtime> state` prints of a container.
type runtimeStatus struct {
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// runtimeState asks runtime rt itself about container id.
func runtimeState(t *testing.T, rt, id string) runtimeStatus {
	t.Helper()
	var st runtimeStatus
	out := run(t, rt, "--root", handlerRoot(rt), "state", id)
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%s state %s: %q: %v", rt, id, out, err)
	}
	return st
}

// crictlStats is a container's CPU time and memory working set as
// `crictl stats -o json` prints them (uint64 values as JSON strings or
// numbers, depending on crictl's marshaller).
func crictlStats(t *testing.T, id string) (cpuNanos, workingSet uint64) {
	t.Helper()
	type value struct {
		Value any `json:"value"`
	}
	var stats struct {
		Stats []struct {
			Attributes struct {
				ID string `json:"id"`
			} `json:"attributes"`
			CPU struct {
				UsageCoreNanoSeconds value `json:"usageCoreNanoSeconds"`
			} `json:"cpu"`
			Memory struct {
				WorkingSetBytes value `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"stats"`
	}
	crictlJSON(t, &stats, "stats", "-o", "json", "--id", id)
	if len(stats.Stats) != 1 || stats.Stats[0].Attributes.ID != id {
		t.Fatalf("crictl stats --id %s: %+v", id, stats)
	}
	num := func(v any) uint64 {
		switch v := v.(type) {
		case float64:
			return uint64(v)
		case string:
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
		return 0
	}
	s := stats.Stats[0]
	return num(s.CPU.UsageCoreNanoSeconds.Value), num(s.Memory.WorkingSetBytes.Value)
}

// writeJSON writes v as dir/name and returns the path.
func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
