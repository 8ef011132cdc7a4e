//go:build node

package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// The static pods TestKubeletPodsSystemd gives kubelet at once, one
// scenario each. Exec probes get generous timeouts: under TCG an exec
// takes a second or more.
var kubeletPods = map[string]string{
	// HTTP readiness (busybox httpd of the httpd test image), exec
	// liveness that keeps passing, and a second container with an exec
	// readiness probe: the pod becomes Ready and nothing restarts.
	"probes": `
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/httpd:2.4.39-4
    readinessProbe:
      httpGet: {path: /index.html, port: 80}
      periodSeconds: 2
      timeoutSeconds: 10
    livenessProbe:
      exec: {command: ["cat", "/usr/local/apache2/htdocs/index.html"]}
      periodSeconds: 5
      timeoutSeconds: 10
  - name: side
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "touch /tmp/ready; exec sleep 3600"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 2
      timeoutSeconds: 10
`,
	// An exec liveness probe that starts failing: kubelet restarts it.
	"liveness": `
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "touch /tmp/healthy; sleep 5; rm /tmp/healthy; exec sleep 3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 2
      timeoutSeconds: 10
      failureThreshold: 1
`,
	// Exits 1 at once: restarts, then CrashLoopBackOff.
	"crash": `
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "echo crashing; exit 1"]
`,
	// Far over its 32 MiB: OOMKilled, 137.
	"oom": `
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    command: ["tail", "/dev/zero"]
    resources:
      limits: {memory: 32Mi}
`,
	// Burstable, holding a steady 40 MiB (a tmpfs file in the pod's
	// /dev/shm, charged to the container) and then idle: its limits as
	// unit properties and cgroup files, and stable numbers for
	// /stats/summary to agree with.
	"steady": `
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "dd if=/dev/zero of=/dev/shm/hold bs=1M count=40 && exec sleep 3600"]
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: 500m, memory: 128Mi}
`,
	// In its own user namespace.
	"userns": `
  hostUsers: false
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    command: ["sleep", "3600"]
`,
}

// kubeletPod is what the scenarios read of a pod from kubelet's read-only
// /pods.
type kubeletPod struct {
	Metadata struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		ContainerStatuses []kubeletContainerStatus `json:"containerStatuses"`
	} `json:"status"`
}

type kubeletContainerStatus struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	RestartCount int    `json:"restartCount"`
	ContainerID  string `json:"containerID"`
	State        struct {
		Running *struct{} `json:"running"`
		Waiting *struct {
			Reason string `json:"reason"`
		} `json:"waiting"`
	} `json:"state"`
	LastState struct {
		Terminated *struct {
			Reason   string `json:"reason"`
			ExitCode int    `json:"exitCode"`
		} `json:"terminated"`
	} `json:"lastState"`
}

// ready reports whether the pod's Ready condition is True.
func (p *kubeletPod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// container is the status of the pod's container named name.
func (p *kubeletPod) container(name string) kubeletContainerStatus {
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == name {
			return c
		}
	}
	return kubeletContainerStatus{}
}

// id is the CRI container ID of kubelet's "<runtime>://<id>".
func (c kubeletContainerStatus) id() string {
	_, id, _ := strings.Cut(c.ContainerID, "://")
	return id
}

func (p *kubeletPod) String() string {
	b, _ := json.Marshal(p.Status)
	return string(b)
}

// kubeletStaticPod is the static pod from manifest name as kubelet's /pods
// has it (static pods are named <name>-<node name>).
func kubeletStaticPod(name string) (*kubeletPod, error) {
	body, err := httpGet("http://" + kubeletReadOnly + "/pods")
	if err != nil {
		return nil, err
	}
	var list struct{ Items []kubeletPod }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Metadata.Name == name+"-crib-node" {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("kubelet has no pod %s-crib-node", name)
}

// waitPod polls kubelet's view of pod name until cond holds; unlike
// harness.Eventually it only marks the test failed, so that one run of
// the scenario reports every part that fails.
func waitPod(t *testing.T, timeout time.Duration, name, what string, cond func(p *kubeletPod) bool) (*kubeletPod, bool) {
	t.Helper()
	start := time.Now()
	var last string
	for {
		p, err := kubeletStaticPod(name)
		if err == nil && cond(p) {
			t.Logf("%s: %s after %v", name, what, time.Since(start).Round(time.Second))
			return p, true
		}
		if err != nil {
			last = err.Error()
		} else {
			last = p.String()
		}
		if time.Since(start) > timeout {
			t.Errorf("%s: not %s after %v: %s", name, what, timeout, last)
			return p, false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKubeletPodsSystemd: crib and kubelet v1.37 with the systemd cgroup
// driver (as kubeadm sets it), one kubelet start, six static pods at once:
// HTTP and exec probes make a pod Ready; a failing liveness probe restarts
// its container; a container that exits 1 reaches CrashLoopBackOff; one
// over its memory limit is OOMKilled (137); a burstable pod's requests and
// limits are its scope's unit properties and cgroup files; hostUsers:
// false runs a pod in a user namespace; kubelet's /stats/summary agrees
// with the cgroup files within 10%. Removing the manifests leaves no
// slice, scope, cgroup, mount or process.
func TestKubeletPodsSystemd(t *testing.T) {
	dumpOnFailure(t)
	withCgroupDriver(t, "systemd")
	begin := time.Now()
	manifests := t.TempDir()
	startKubelet(t, manifests, "systemd")
	t.Logf("kubelet healthy after %v", time.Since(begin).Round(time.Second))
	for name, spec := range kubeletPods {
		manifest := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: default\nspec:\n  terminationGracePeriodSeconds: 1\n%s", name, spec)
		if err := os.WriteFile(filepath.Join(manifests, name+".yaml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Every pod progresses at once; the waits below take, together, about
	// as long as the slowest.
	running := func(p *kubeletPod) bool {
		return p.Status.Phase == "Running" && p.container("app").State.Running != nil
	}

	// 1. Probes.
	if p, ok := waitPod(t, 6*time.Minute, "probes", "Ready (HTTP and exec probes)", (*kubeletPod).ready); ok {
		if n := p.container("web").RestartCount; n != 0 {
			t.Errorf("probes: web restarted %d times with a passing liveness probe", n)
		}
	}
	waitPod(t, 3*time.Minute, "liveness", "restarted by its failing liveness probe", func(p *kubeletPod) bool {
		return p.container("app").RestartCount >= 1
	})

	// 2. Restarts and CrashLoopBackOff.
	waitPod(t, 3*time.Minute, "crash", "in CrashLoopBackOff after 2 restarts", func(p *kubeletPod) bool {
		c := p.container("app")
		return c.RestartCount >= 2 && c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff"
	})

	// 3. OOMKilled.
	if p, ok := waitPod(t, 3*time.Minute, "oom", "terminated once", func(p *kubeletPod) bool {
		return p.container("app").LastState.Terminated != nil
	}); ok {
		if term := p.container("app").LastState.Terminated; term.Reason != "OOMKilled" || term.ExitCode != 137 {
			t.Errorf("oom: lastState.terminated %+v, want OOMKilled, 137", *term)
		}
	}

	// 4. Requests and limits: unit properties and cgroup files.
	if p, ok := waitPod(t, 3*time.Minute, "steady", "Running", running); ok {
		steadyResources(t, p.container("app").id())
	}

	// 5. hostUsers: false.
	if p, ok := waitPod(t, 3*time.Minute, "userns", "Running", running); ok {
		id := p.container("app").id()
		uidMap := strings.Join(strings.Fields(execIn(t, id, "cat", "/proc/self/uid_map")), " ")
		t.Logf("userns: the container's uid_map: %s", uidMap)
		if f := strings.Fields(uidMap); len(f) != 3 || f[0] != "0" || f[1] == "0" {
			t.Errorf("userns: uid_map %q, want one range mapping 0 to a host ID other than 0", uidMap)
		}
		if uid := harness.ProcStatus(t, infoPID(t, "inspect", id), "Uid:")[0]; uid == "0" {
			t.Errorf("userns: the container's process runs as host root")
		}
	}

	// 6. /stats/summary against the cgroup files.
	if p, ok := waitPod(t, time.Minute, "steady", "Running", running); ok {
		summaryAgrees(t, p.Metadata.UID, p.container("app").id())
	}
	t.Logf("scenarios checked %v after kubelet's start", time.Since(begin).Round(time.Second))

	// 7. Remove the manifests: nothing left. The IDs come from one listing
	// of each kind: a crictl start costs seconds in the emulated guest.
	var pods struct {
		Items []struct {
			ID       string `json:"id"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	crictlJSON(t, &pods, "pods", "-o", "json")
	var ctrs struct {
		Containers []struct {
			ID    string `json:"id"`
			PodID string `json:"podSandboxId"`
		} `json:"containers"`
	}
	crictlJSON(t, &ctrs, "ps", "-a", "-o", "json")
	var ids, slices []string
	for name := range kubeletPods {
		for _, pod := range pods.Items {
			if pod.Metadata.Name != name+"-crib-node" {
				continue
			}
			ids = append(ids, pod.ID)
			for _, c := range ctrs.Containers {
				if c.PodID == pod.ID {
					ids = append(ids, c.ID)
				}
			}
		}
		if p, err := kubeletStaticPod(name); err == nil {
			// The pod's slice, kubepods-<qos>-pod<uid with _>.slice.
			slices = append(slices, "pod"+strings.ReplaceAll(p.Metadata.UID, "-", "_")+".slice")
		}
		if err := os.Remove(filepath.Join(manifests, name+".yaml")); err != nil {
			t.Fatal(err)
		}
	}
	removed := time.Now()
	harness.Eventually(t, 3*time.Minute, "kubelet removing the pods", func() (bool, string) {
		out := crictlOut("pods", "-q")
		return out == "", "crictl pods: " + out
	})
	// kubelet removes a deleted pod's slice in its housekeeping, after
	// the pod's volumes: give it longer than checkGone's 30s.
	harness.Eventually(t, 2*time.Minute, "kubelet removing the pods' slices", func() (bool, string) {
		left := leftovers(slices...)
		return len(left) == 0, strings.Join(left, "\n")
	})
	checkGone(t, append(ids, slices...)...)
	t.Logf("nothing left %v after the manifests were removed; %v in all", time.Since(removed).Round(time.Second), time.Since(begin).Round(time.Second))
}

// steadyResources checks the steady pod's container: requests and limits
// (cpu 250m/500m, memory 64Mi/128Mi) as properties of its
// crib-<id>.scope and as the files of its cgroup.
func steadyResources(t *testing.T, id string) {
	t.Helper()
	dir := ctrCgroup(t, id)
	scope := "crib-" + id + ".scope"
	if filepath.Base(dir) != scope || !strings.Contains(dir, "kubepods-burstable-pod") {
		t.Errorf("steady: the container's cgroup is %s, want its %s in kubelet's burstable pod slice", dir, scope)
	}
	props := map[string]string{}
	for _, line := range strings.Split(run(t, "systemctl", "show", "-p", "MemoryMax,CPUQuotaPerSecUSec,CPUWeight,Slice", scope), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	t.Logf("steady: systemctl show %s: %v", scope, props)
	for _, c := range []struct{ what, got, want string }{
		{"MemoryMax", props["MemoryMax"], "134217728"},
		{"CPUQuotaPerSecUSec", props["CPUQuotaPerSecUSec"], "500ms"},
		{"memory.max", cgFile(t, dir, "memory.max"), "134217728"},
		{"cpu.max", cgFile(t, dir, "cpu.max"), "50000 100000"},
		// The CPU request: kubelet's cpu shares (256 for 250m) converted to
		// a weight once, the same for systemd and the file.
		{"CPUWeight (as cpu.weight)", props["CPUWeight"], cgFile(t, dir, "cpu.weight")},
	} {
		if c.got != c.want {
			t.Errorf("steady: %s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if w := cgFile(t, dir, "cpu.weight"); w == "100" || w == "1" {
		t.Errorf("steady: cpu.weight %s: the 250m request did not set it", w)
	}
	if !strings.HasPrefix(props["Slice"], "kubepods-burstable-pod") {
		t.Errorf("steady: %s is in slice %q, want kubelet's burstable pod slice", scope, props["Slice"])
	}
}

// summaryStats is the part of /stats/summary's cpu and memory the
// scenario compares.
type summaryStats struct {
	CPU struct {
		UsageNanoCores       uint64 `json:"usageNanoCores"`
		UsageCoreNanoSeconds uint64 `json:"usageCoreNanoSeconds"`
	} `json:"cpu"`
	Memory struct {
		UsageBytes      uint64 `json:"usageBytes"`
		WorkingSetBytes uint64 `json:"workingSetBytes"`
	} `json:"memory"`
}

// summaryAgrees polls kubelet's /stats/summary until the steady pod's and
// its container's CPU time, memory usage and working set are non-zero and
// within 10% of the pod slice's and the container scope's cgroup files,
// read right after each answer.
func summaryAgrees(t *testing.T, podUID, id string) {
	t.Helper()
	ctrDir := ctrCgroup(t, id)
	podDir := filepath.Dir(ctrDir)
	var last string
	start := time.Now()
	for {
		last = summaryDiff(t, podUID, podDir, ctrDir)
		if last == "" {
			t.Logf("steady: /stats/summary within 10%% of the cgroup files after %v", time.Since(start).Round(time.Second))
			return
		}
		if time.Since(start) > 2*time.Minute {
			t.Errorf("steady: /stats/summary not within 10%% of the cgroup files after 2m: %s", last)
			return
		}
		time.Sleep(time.Second)
	}
}

// summaryDiff is "" when /stats/summary agrees with the cgroup files, or
// what does not.
func summaryDiff(t *testing.T, podUID, podDir, ctrDir string) string {
	body, err := httpGet("http://" + kubeletReadOnly + "/stats/summary")
	if err != nil {
		return err.Error()
	}
	var sum struct {
		Pods []struct {
			PodRef struct {
				UID string `json:"uid"`
			} `json:"podRef"`
			summaryStats
			Containers []struct {
				Name string `json:"name"`
				summaryStats
			} `json:"containers"`
		} `json:"pods"`
	}
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		return err.Error()
	}
	var bad []string
	compare := func(what string, got summaryStats, dir string) {
		want := map[string]uint64{
			"cpu usageCoreNanoSeconds": cgKey(t, dir, "cpu.stat", "usage_usec") * 1000,
			"memory usageBytes":        cgUint(t, dir, "memory.current"),
		}
		want["memory workingSetBytes"] = want["memory usageBytes"] - cgKey(t, dir, "memory.stat", "inactive_file")
		have := map[string]uint64{
			"cpu usageCoreNanoSeconds": got.CPU.UsageCoreNanoSeconds,
			"memory usageBytes":        got.Memory.UsageBytes,
			"memory workingSetBytes":   got.Memory.WorkingSetBytes,
		}
		for k, w := range want {
			g := have[k]
			if g == 0 || w == 0 || (max(g, w)-min(g, w))*10 > w {
				bad = append(bad, fmt.Sprintf("%s %s: kubelet %d, cgroup %d", what, k, g, w))
			}
		}
	}
	for _, p := range sum.Pods {
		if p.PodRef.UID != podUID {
			continue
		}
		compare("pod", p.summaryStats, podDir)
		for _, c := range p.Containers {
			if c.Name == "app" {
				compare("container", c.summaryStats, ctrDir)
				return strings.Join(bad, "; ")
			}
		}
		return "no container app in the pod's summary: " + strings.Join(bad, "; ")
	}
	return "no pod " + podUID + " in /stats/summary"
}
