//go:build integration && bench

package integration

// The before-and-after benchmark (`make bench-base BASE=<rev>`): this
// tree's cribd against the cribd of another revision, both running at once
// with the same kind of network (each its own bridge and subnet) and the
// same loopback registry, pod lifecycles alternating between them, so that
// a change can show it costs nothing where it is not used. It reports; it
// asserts nothing about speed.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// TestBenchVsBase needs CRIB_BENCH_BASE_BIN_DIR: the base revision's
// cribd, crib-shim and crib-pause (cribd runs the shim and pause next to
// it).
func TestBenchVsBase(t *testing.T) {
	baseDir := os.Getenv("CRIB_BENCH_BASE_BIN_DIR")
	if baseDir == "" {
		t.Skip("CRIB_BENCH_BASE_BIN_DIR is not set (make bench-base BASE=<rev> sets it)")
	}
	reg := startRegistry(t, RegistryOptions{})
	regConf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(regConf, []byte(registriesConf(reg.Addr, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf("\n[image]\nregistries_conf = %q\n", regConf)
	// Names of 7 characters at most: cribd refuses a run dir over 27.
	head := start(t, Options{Name: "crib-hd", ExtraConfig: extra})
	// The base gets the integration range's neighbour just above it
	// (10.88.250-254 are outside every suite's range).
	n := 250 + os.Getpid()%5
	base := start(t, Options{Name: "crib-bs", ExtraConfig: extra, NoStart: true, Network: harness.Network{
		Octet: n, Bridge: fmt.Sprintf("cribab%d", n), Prefix: fmt.Sprintf("10.88.%d.", n), Subnet: fmt.Sprintf("10.88.%d.0/24", n),
	}})
	base.Binary = filepath.Join(baseDir, "cribd")
	base.Start()

	targets := []*criTarget{cribTarget("head", head), cribTarget("base", base)}
	type result struct{ sandboxes, ready, container []time.Duration }
	res := map[*criTarget]*result{targets[0]: {}, targets[1]: {}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	for _, tg := range targets {
		tg.pull(ctx, t, vsBusybox, false)
	}
	for i := -benchWarmup; i < vsReadyPods; i++ {
		// Each goes first every other round: the first of a pair runs
		// after the other's removal, the second after its own start.
		order := []*criTarget{targets[i&1], targets[1-i&1]}
		for _, tg := range order {
			pod, _, sandbox, ready, err := tg.startPod(ctx, fmt.Sprintf("ab-%d", i+benchWarmup))
			if err != nil {
				t.Fatal(err)
			}
			tg.removePod(ctx, t, pod)
			if i >= 0 {
				r := res[tg]
				r.sandboxes = append(r.sandboxes, sandbox)
				r.ready = append(r.ready, ready)
				r.container = append(r.container, ready-sandbox)
			}
		}
	}

	h, b := res[targets[0]], res[targets[1]]
	row := func(what string, hd, bd []time.Duration) string {
		hp, bp := pct(hd, 50), pct(bd, 50)
		return fmt.Sprintf("| %s p50 (n=%d) | %s | %s | %.2f |\n", what, len(hd),
			hp.Round(100*time.Microsecond), bp.Round(100*time.Microsecond), float64(hp)/float64(bp))
	}
	report := "| what | this tree | base | this / base |\n| --- | --- | --- | --- |\n" +
		row("RunPodSandbox", h.sandboxes, b.sandboxes) +
		row("CreateContainer + StartContainer", h.container, b.container) +
		row("pod ready (run + create + start)", h.ready, b.ready)
	benchReport(report)
}
