//go:build integration && bench

package integration

// The pod benchmark (`make bench`): RunPodSandbox latency over the
// kubelet-like CNI config of the harness (bridge with isGateway, ipMasq,
// hairpinMode, host-local; then portmap), the CNI share of it, and cribd's
// memory idle and with 20 pods. It reports; it asserts nothing about speed.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/tests/harness"
)

const (
	benchWarmup = 5
	benchPods   = 60
	benchHeld   = 20
)

func TestBenchPodSandbox(t *testing.T) {
	h := start(t, Options{})
	c := h.client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	run := func(i int) (string, time.Duration) {
		t.Helper()
		req := &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{
				Name: fmt.Sprintf("bench-%d", i), Namespace: "bench", Uid: fmt.Sprintf("uid-%d", i),
			},
			Hostname: fmt.Sprintf("bench-%d", i),
			Linux:    &runtimeapi.LinuxPodSandboxConfig{},
		}}
		begin := time.Now()
		resp, err := c.RunPodSandbox(ctx, req)
		took := time.Since(begin)
		if err != nil {
			t.Fatalf("RunPodSandbox %d: %v\n%s", i, err, tail(h.Log(), 30))
		}
		return resp.PodSandboxId, took
	}
	remove := func(id string) time.Duration {
		t.Helper()
		begin := time.Now()
		if _, err := c.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
		if _, err := c.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("RemovePodSandbox: %v", err)
		}
		return time.Since(begin)
	}

	idle := rssKiB(t, h.PID(), "VmRSS:")
	idleAnon := rssKiB(t, h.PID(), "RssAnon:")
	for i := 0; i < benchWarmup; i++ {
		id, _ := run(-1 - i)
		remove(id)
	}
	var runs, removes []time.Duration
	for i := 0; i < benchPods; i++ {
		id, took := run(i)
		runs = append(runs, took)
		removes = append(removes, remove(id))
	}
	var held []string
	for i := 0; i < benchHeld; i++ {
		id, _ := run(1000 + i)
		held = append(held, id)
	}
	with20 := rssKiB(t, h.PID(), "VmRSS:")
	with20Anon := rssKiB(t, h.PID(), "RssAnon:")
	for _, id := range held {
		remove(id)
	}
	netTimes := logDurations(h.Log(), "network")
	pauseTimes := logDurations(h.Log(), "pause")

	report := fmt.Sprintf(`RunPodSandbox (n=%d, after %d warm-up): p50 %s  p99 %s
  of which CNI ADD (bridge+portmap, in parallel with the pause start): p50 %s
  of which shim launch + pause create/start: p50 %s
Stop+RemovePodSandbox: p50 %s  p99 %s
cribd RSS: idle %.1f MiB, with %d pods %.1f MiB (of which anonymous: %.1f and %.1f MiB; the rest is the binary's own pages)
`,
		len(runs), benchWarmup, pct(runs, 50), pct(runs, 99),
		pct(netTimes, 50), pct(pauseTimes, 50),
		pct(removes, 50), pct(removes, 99),
		float64(idle)/1024, benchHeld, float64(with20)/1024, float64(idleAnon)/1024, float64(with20Anon)/1024)
	fmt.Print(report)
	if out := os.Getenv("CRIB_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			f.WriteString(report)
			f.Close()
		}
	}
}

// pct returns the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration { return harness.Percentile(ds, p) }

// rssKiB reads a /proc/<pid>/status field in KiB (VmRSS:, RssAnon:).
func rssKiB(t *testing.T, pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	t.Fatalf("no %s for %d", field, pid)
	return 0
}

// logDurations collects the field=duration values cribd logs when a pod is ready.
func logDurations(log, field string) []time.Duration {
	re := regexp.MustCompile(`is ready with IPs.* ` + field + `=([0-9.]+[a-zµ]+)`)
	var out []time.Duration
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			out = append(out, d)
		}
	}
	return out
}
