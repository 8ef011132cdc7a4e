//go:build e2e && bench

package e2e

// The kubelet benchmark (`make bench`, not `make test-e2e`): a static pod
// from its manifest written to kubelet reporting its container running,
// with the image already present. It reports; it asserts nothing about
// speed.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/tests/harness"
)

const (
	benchPods    = 20                    // measured pods
	benchPoll    = 20 * time.Millisecond // kubelet /pods poll interval
	benchImage   = "docker.io/library/busybox:latest"
	benchTimeout = 120 * time.Second
)

// benchManifest is a busybox sleep pod; kubelet kills it after a 1 s
// grace (sleep as PID 1 ignores SIGTERM) when the manifest goes.
func benchManifest(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleep
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
`, name, benchImage)
}

// benchSample is one pod's timeline, as offsets from the manifest write.
type benchSample struct {
	sandboxCreated   time.Duration // cribd's sandbox createdAt: RunPodSandbox began
	runPodSandbox    time.Duration // RunPodSandbox's own time, from cribd's log
	containerStarted time.Duration // cribd's container startedAt: the process started
	reported         time.Duration // kubelet's /pods first showed the container running
}

// TestBenchStaticPodRunning writes benchPods static pod manifests one at a
// time (each pod stays running while the next starts) and times each from
// the manifest write to kubelet's /pods showing its container running,
// split at cribd's own timestamps into kubelet's work before the CRI calls,
// the CRI calls, and kubelet noticing the started container. Then, in the
// same run, a second kubelet with the same configuration does the same on
// containerd (harness.Containerd, pulling from the same loopback registry),
// and the report gives both and their ratio.
func TestBenchStaticPodRunning(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	c.Crictl("pull", benchImage)

	var samples []benchSample
	var polls []time.Duration
	// Pod -1 warms kubelet and cribd up (first sandbox, first container of
	// the image); it is not counted.
	for i := -1; i < benchPods; i++ {
		name := benchPodName(i)
		begin, reported, p := benchOnePod(t, k, name)
		polls = append(polls, p...)
		s := cribTimeline(t, e, name, begin, reported)
		if i >= 0 {
			samples = append(samples, s)
		}
	}
	running := len(c.Pods())

	// Remove every manifest; drain waits until kubelet has stopped the pods
	// and removed their cgroups. Then this kubelet stops, so that only one
	// kubelet at a time manages the node.
	k.drain()
	k.Stop()

	ctrdReported, ctrdPolls := benchContainerd(t, e)

	var total, before, cri, run, rest, after []time.Duration
	for _, s := range samples {
		total = append(total, s.reported)
		before = append(before, s.sandboxCreated)
		cri = append(cri, s.containerStarted-s.sandboxCreated)
		run = append(run, s.runPodSandbox)
		rest = append(rest, s.containerStarted-s.sandboxCreated-s.runPodSandbox)
		after = append(after, s.reported-s.containerStarted)
	}
	pct := harness.Percentile
	ratio := func(p int) string {
		if d := pct(ctrdReported, p); d > 0 {
			return fmt.Sprintf("%.2f", float64(pct(total, p))/float64(d))
		}
		return "n/a"
	}
	report := fmt.Sprintf(`Static pod (busybox sleep, image present), manifest written -> container running in kubelet's /pods (%s on cribd; n=%d, one at a time, up to %d pods running; /pods polled every %s, one poll p50 %s): p50 %s  p99 %s
  manifest written -> RunPodSandbox begins (kubelet before the CRI; cribd's sandbox createdAt): p50 %s  p99 %s
  RunPodSandbox begins -> container process started (cribd's RunPodSandbox+CreateContainer+StartContainer and kubelet's steps between them; crictl inspect timestamps): p50 %s  p99 %s
    of which RunPodSandbox in cribd (its log's "is ready ... took"): p50 %s  p99 %s
    of which sandbox ready -> container process started (kubelet's PodSandboxStatus, ImageStatus, container config; cribd's CreateContainer+StartContainer): p50 %s  p99 %s
  container process started -> kubelet's /pods shows it running (PLEG relist, status update, poll): p50 %s  p99 %s
Same on containerd %s (CRI plugin, runc; same kubelet configuration, manifests, registry and CNI plugins; n=%d; one poll p50 %s): p50 %s  p99 %s
crib vs containerd, same run (ratio crib/containerd, lower is faster for crib):
  p50  crib %s  containerd %s  ratio %s
  p99  crib %s  containerd %s  ratio %s
`,
		filepath.Base(filepath.Dir(kubeletPath())), len(samples), running, benchPoll, pct(polls, 50), pct(total, 50), pct(total, 99),
		pct(before, 50), pct(before, 99), pct(cri, 50), pct(cri, 99), pct(run, 50), pct(run, 99),
		pct(rest, 50), pct(rest, 99), pct(after, 50), pct(after, 99),
		harness.ContainerdVersion, len(ctrdReported), pct(ctrdPolls, 50), pct(ctrdReported, 50), pct(ctrdReported, 99),
		pct(total, 50), pct(ctrdReported, 50), ratio(50),
		pct(total, 99), pct(ctrdReported, 99), ratio(99))
	if err := harness.BenchReport(report); err != nil {
		t.Error(err)
	}
}

// benchPodName is the name of measured pod i, or of the warm-up pod (-1).
func benchPodName(i int) string {
	if i < 0 {
		return "bench-warmup"
	}
	return fmt.Sprintf("bench-%02d", i)
}

// benchContainerd starts containerd with the e2e registry as its mirror
// and a kubelet on it (the crib kubelet's configuration, its own dirs and
// ports), pulls the image through containerd's CRI, and times the same
// warm-up and benchPods manifests as the crib run. It returns each
// measured pod's manifest write -> running in /pods, and every poll's
// duration. Cleanup (kubelet's, then harness.Containerd's with its leak
// check) runs at the end of the test.
func benchContainerd(t *testing.T, e *Env) (reported, polls []time.Duration) {
	t.Helper()
	ctrd := harness.StartContainerd(t, harness.ContainerdOptions{RegistryAddr: e.Registry.Addr, Octet: network.Octet})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	_, err := ctrd.Images().PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: benchImage}})
	cancel()
	if err != nil {
		t.Fatalf("containerd: PullImage %s: %v", benchImage, err)
	}
	k := startKubelet(t, filepath.Join(e.Dir, "kubelet-ctrd"), ctrd.Socket, ctrd.CgroupParent)
	for i := -1; i < benchPods; i++ {
		name := benchPodName(i)
		_, r, p := benchOnePod(t, k, name)
		polls = append(polls, p...)
		t.Logf("containerd: %s: running in /pods +%s", name, r.Round(time.Millisecond))
		if i >= 0 {
			reported = append(reported, r)
		}
	}
	k.drain()
	k.Stop()
	return reported, polls
}

// benchOnePod writes the manifest name, polls /pods every benchPoll until
// kubelet reports the container running, and returns when it wrote the
// manifest, the time from the write to that report and the duration of
// each poll.
func benchOnePod(t *testing.T, k *Kubelet, name string) (time.Time, time.Duration, []time.Duration) {
	t.Helper()
	begin := time.Now()
	k.WriteManifest(name, benchManifest(name))
	var polls []time.Duration
	var last string
	for {
		p0 := time.Now()
		p, ok, err := k.Pod(name)
		polls = append(polls, time.Since(p0))
		if err == nil && ok {
			if cs, found := p.Container("sleep"); found && cs.State["running"] != nil {
				return begin, time.Since(begin), polls
			}
			last = p.String()
		} else if err != nil {
			last = err.Error()
		} else {
			last = "not listed in kubelet's /pods"
		}
		if time.Since(begin) > benchTimeout {
			t.Fatalf("%s: container not running in kubelet's /pods after %s: %s", name, benchTimeout, last)
		}
		time.Sleep(benchPoll)
	}
}

// cribTimeline reads cribd's timestamps of the pod name, whose manifest
// was written at begin and which kubelet reported running reported later,
// into the pod's timeline.
func cribTimeline(t *testing.T, e *Env, name string, begin time.Time, reported time.Duration) benchSample {
	t.Helper()
	k, c := e.Kubelet, e.Cribd
	podID := sandboxID(t, c, k, name)
	var pod struct {
		Status struct {
			CreatedAt json.RawMessage `json:"createdAt"`
		} `json:"status"`
	}
	c.CrictlJSON(&pod, "inspectp", "-o", "json", podID)
	ctrs := containers(t, c, podID)
	if len(ctrs) != 1 {
		t.Fatalf("%s: cribd has %d containers in pod %s, want 1: %+v", name, len(ctrs), podID, ctrs)
	}
	var ctr struct {
		Status struct {
			StartedAt json.RawMessage `json:"startedAt"`
		} `json:"status"`
	}
	c.CrictlJSON(&ctr, "inspect", "-o", "json", ctrs[0].ID)
	s := benchSample{
		sandboxCreated:   criTime(t, pod.Status.CreatedAt).Sub(begin),
		runPodSandbox:    runPodSandboxTook(t, c, name+"-"+k.NodeName),
		containerStarted: criTime(t, ctr.Status.StartedAt).Sub(begin),
		reported:         reported,
	}
	t.Logf("%s: sandbox created +%s (RunPodSandbox took %s), container started +%s, running in /pods +%s",
		name, s.sandboxCreated.Round(time.Millisecond), s.runPodSandbox.Round(time.Millisecond),
		s.containerStarted.Round(time.Millisecond), s.reported.Round(time.Millisecond))
	return s
}

// criTime reads a CRI timestamp as crictl's JSON writes it: RFC 3339 with
// nanoseconds, or (older crictl) int64 unix nanoseconds, quoted or not.
func criTime(t *testing.T, raw json.RawMessage) time.Time {
	t.Helper()
	s := strings.Trim(string(raw), `"`)
	if at, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return at
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("CRI timestamp %s: neither RFC 3339 nor positive unix nanoseconds", raw)
	}
	return time.Unix(0, n)
}

// runPodSandboxTook reads RunPodSandbox's duration for the pod named pod
// (namespace default) from the took= field of cribd's "pod ... is ready"
// log line.
func runPodSandboxTook(t *testing.T, c *harness.Cribd, pod string) time.Duration {
	t.Helper()
	line := logHas(t, c.LogPath, 10*time.Second, pod+": cribd logs it ready", "pod default/"+pod+" is ready")
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "took="); ok {
			d, err := time.ParseDuration(strings.Trim(v, `"`))
			if err != nil {
				t.Fatalf("cribd log: %q: took: %v", line, err)
			}
			return d
		}
	}
	t.Fatalf("cribd log: no took= in %q", line)
	return 0
}
