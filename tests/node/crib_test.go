//go:build node

package node

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// TestUnitIsShipped: crib.service runs as shipped: Type=notify made it
// active (cribd sent READY=1), and the properties pods depend on are set.
func TestUnitIsShipped(t *testing.T) {
	out := run(t, "systemctl", "show", "crib.service",
		"-p", "ActiveState,SubState,Type,Delegate,KillMode,Restart,LimitNOFILE,OOMScoreAdjust,StatusErrno")
	for _, want := range []string{
		"ActiveState=active", "SubState=running", "Type=notify", "Delegate=yes",
		"KillMode=process", "Restart=always", "LimitNOFILE=1048576", "OOMScoreAdjust=-999",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("systemctl show crib: no %s in\n%s", want, out)
		}
	}
}

// TestPodLifecycle: the README's examples (docs/examples) as a user runs
// them with crictl on a cgroup v2 node with the default cgroupfs driver:
// run the pod, create and start the container, exec, stats, stop, remove;
// then nothing of either is left.
func TestPodLifecycle(t *testing.T) {
	dumpOnFailure(t)
	pod := examplePod(t)
	ctr := crictl(t, "create", pod, shareFile("container.json"), shareFile("pod.json"))
	crictl(t, "start", ctr)
	if got := crictl(t, "exec", ctr, "echo", "hi from exec"); got != "hi from exec" {
		t.Fatalf("crictl exec: %q", got)
	}
	harness.Eventually(t, 30*time.Second, "the container's greeting in its log", func() (bool, string) {
		out, _, _ := runRaw("crictl", "logs", ctr)
		return strings.Contains(out, "hello from crib"), out
	})

	var stats struct {
		Stats []struct {
			Attributes struct {
				ID string `json:"id"`
			} `json:"attributes"`
		} `json:"stats"`
	}
	crictlJSON(t, &stats, "stats", "-o", "json", "--id", ctr)
	if len(stats.Stats) != 1 || stats.Stats[0].Attributes.ID != ctr {
		t.Fatalf("crictl stats --id %s: %+v", ctr, stats)
	}

	crictl(t, "stop", ctr)
	crictl(t, "rm", ctr)
	crictl(t, "stopp", pod)
	crictl(t, "rmp", pod)
	checkGone(t, pod, ctr)
}

// TestRestartKeepsContainers: `systemctl restart crib` (KillMode=process)
// replaces cribd and leaves every shim, pause and container process
// running: same PIDs, same start times; the new cribd serves them.
func TestRestartKeepsContainers(t *testing.T) {
	dumpOnFailure(t)
	pod := examplePod(t)
	ctr := crictl(t, "create", pod, shareFile("container.json"), shareFile("pod.json"))
	startContainer(t, ctr)

	pids := map[string]int{
		"pause":     infoPID(t, "inspectp", pod),
		"container": infoPID(t, "inspect", ctr),
	}
	for _, field := range strings.Fields(run(t, "pgrep", "-x", "crib-shim")) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			t.Fatalf("pgrep: %q", field)
		}
		pids["crib-shim "+field] = pid
	}
	starts := map[string]string{}
	for name, pid := range pids {
		starts[name] = procStart(pid)
	}
	before := strings.TrimSpace(run(t, "systemctl", "show", "-p", "MainPID", "--value", "crib.service"))

	run(t, "systemctl", "restart", "crib.service")

	after := strings.TrimSpace(run(t, "systemctl", "show", "-p", "MainPID", "--value", "crib.service"))
	if after == before || after == "0" {
		t.Fatalf("cribd's PID %s before the restart, %s after: not restarted", before, after)
	}
	for name, pid := range pids {
		if got := procStart(pid); got == "" || got != starts[name] {
			t.Errorf("%s pid %d: started at %q before the restart, %q after", name, pid, starts[name], got)
		}
	}
	if got := infoPID(t, "inspect", ctr); got != pids["container"] {
		t.Errorf("container pid %d after the restart, %d before", got, pids["container"])
	}
	if got := execIn(t, ctr, "echo", "still here"); got != "still here" {
		t.Fatalf("exec after the restart: %q", got)
	}

	removeContainer(t, ctr)
	removePod(t, pod)
	checkGone(t, pod, ctr)
}
