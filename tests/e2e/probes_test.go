//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const livenessManifest = `apiVersion: v1
kind: Pod
metadata:
  name: liveness
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600 & wait"]
    livenessProbe:
      exec:
        command: ["cat", "/tmp/healthy"]
      periodSeconds: 1
      timeoutSeconds: 1
      failureThreshold: 1
`

// TestLivenessProbeRestarts: an exec liveness probe that starts failing
// makes kubelet kill and restart the container in the same sandbox
// (restart count and the CRI attempt rise, the pod IP stays), and, as it
// keeps failing, back off: CrashLoopBackOff. The kubelet config caps the
// back-off at 5s (crashLoopBackOff.maxContainerRestartPeriod), more than
// the container's 3s of life, so the second death falls inside it.
func TestLivenessProbeRestarts(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("liveness", livenessManifest)
	first := waitRunning(t, k, "liveness", 1)
	podID := sandboxID(t, c, k, "liveness")

	waitPod(t, k, 60*time.Second, "liveness", "restart count at least 1", func(p KubeletPod) (bool, string) {
		cs, ok := p.Container("app")
		return ok && cs.RestartCount >= 1, p.String()
	})
	logHas(t, k.LogPath, 10*time.Second, "kubelet logs the liveness failure", "failed liveness probe", "app")

	var attempts []string
	eventually(t, 30*time.Second, "crictl ps -a shows attempts 0 and 1 of app in the pod's one sandbox", func() (bool, string) {
		attempts = nil
		seen := map[int]bool{}
		for _, ctr := range containers(t, c, podID) {
			seen[ctr.Metadata.Attempt] = true
			attempts = append(attempts, fmt.Sprintf("%s attempt %d %s", ctr.ID[:12], ctr.Metadata.Attempt, ctr.State))
		}
		return seen[0] && seen[1], strings.Join(attempts, ", ")
	})
	if n := len(sandboxes(t, c, k, "liveness")); n != 1 {
		t.Errorf("cribd has %d sandboxes for the pod, want the one it started with", n)
	}
	if ip := c.Inspect(podID).Status.Network.IP; ip != first.Status.PodIP {
		t.Errorf("after the restart cribd reports pod IP %s, before it %s", ip, first.Status.PodIP)
	}

	// It keeps failing: kubelet backs off.
	logHas(t, k.LogPath, 60*time.Second, "kubelet backs off restarting app",
		"CrashLoopBackOff", "back-off", "restarting failed container=app")
	p := waitPod(t, k, 30*time.Second, "liveness", "restart count at least 2, same IP", func(p KubeletPod) (bool, string) {
		cs, ok := p.Container("app")
		return ok && cs.RestartCount >= 2, p.String()
	})
	if p.Status.PodIP != first.Status.PodIP {
		t.Errorf("kubelet's podIP went from %s to %s", first.Status.PodIP, p.Status.PodIP)
	}
	if got := sandboxID(t, c, k, "liveness"); got != podID {
		t.Errorf("the pod's sandbox changed from %s to %s", podID, got)
	}
}

const readinessManifest = `apiVersion: v1
kind: Pod
metadata:
  name: hangready
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    readinessProbe:
      exec:
        command: ["sh", "-c", "exec sleep 37"]
      periodSeconds: 2
      timeoutSeconds: 1
`

// TestReadinessProbeTimeout: an exec readiness probe against a command
// that hangs times out after its 1s (kubelet logs the timeout), the pod
// stays not Ready, and the timed-out commands do not pile up in the
// container.
func TestReadinessProbeTimeout(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("hangready", readinessManifest)
	waitPod(t, k, 120*time.Second, "hangready", "Running", func(p KubeletPod) (bool, string) {
		cs, ok := p.Container("app")
		return ok && p.Status.Phase == "Running" && cs.State["running"] != nil, p.String()
	})
	line := logHas(t, k.LogPath, 30*time.Second, "kubelet logs the readiness probe's timeout",
		"Probe failed", `probeType="Readiness"`, "timed out")
	t.Logf("kubelet: %s", line)

	// The ExecSync calls that timed out took about their 1s, not the 37s
	// of the command: cribd logs each call and its failure.
	podID := sandboxID(t, c, k, "hangready")
	ctr := containers(t, c, podID)[0].ID
	var took []time.Duration
	eventually(t, 30*time.Second, "three ExecSync calls timed out in cribd", func() (bool, string) {
		took = execSyncDurations(readFile(c.LogPath), ctr)
		return len(took) >= 3, fmt.Sprintf("%v", took)
	})
	for _, d := range took {
		if d > 5*time.Second {
			t.Errorf("an ExecSync with a 1s timeout took %s in cribd (all: %v)", d, took)
		}
	}

	p := waitPod(t, k, 10*time.Second, "hangready", "not Ready", func(p KubeletPod) (bool, string) {
		cs, _ := p.Container("app")
		return !cs.Ready && p.Condition("Ready") == "False", p.String()
	})
	if cs, _ := p.Container("app"); cs.RestartCount != 0 {
		t.Errorf("a readiness failure restarted the container: %s", p.String())
	}

	// cribd kills a timed-out exec: at most the one in flight remains.
	pid := containerPID(t, c, ctr)
	cg := strings.TrimSpace(readFile(fmt.Sprintf("/proc/%d/cgroup", pid)))
	var hung []string
	for _, proc := range procsIn(cg) {
		if strings.Contains(readFile(filepath.Join("/proc", proc, "cmdline")), "37") {
			hung = append(hung, proc)
		}
	}
	if len(hung) > 1 {
		t.Errorf("%d probe commands (sleep 37) still run in the container (pids %v); timed-out execs are not killed", len(hung), hung)
	}
}

// execSyncDurations are the times between each ExecSync call on container
// id and its DeadlineExceeded failure in cribd's log.
func execSyncDurations(log, id string) []time.Duration {
	var out []time.Duration
	var start time.Time
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "ExecSync") || !strings.Contains(line, "container="+id) {
			continue
		}
		ts := logTime(line)
		switch {
		case strings.Contains(line, `msg="CRI call"`):
			start = ts
		case strings.Contains(line, "DeadlineExceeded") && !start.IsZero() && !ts.IsZero():
			out = append(out, ts.Sub(start))
			start = time.Time{}
		}
	}
	return out
}

// logTime is the time="..." of a logrus text line.
func logTime(line string) time.Time {
	i := strings.Index(line, `time="`)
	if i < 0 {
		return time.Time{}
	}
	rest := line[i+len(`time="`):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}
	}
	ts, _ := time.Parse(time.RFC3339Nano, rest[:j])
	return ts
}

// procsIn lists the PIDs whose /proc/<pid>/cgroup equals cg.
func procsIn(cg string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if strings.TrimSpace(readFile(filepath.Join(p, "cgroup"))) == cg {
			out = append(out, filepath.Base(p))
		}
	}
	return out
}
