//go:build integration

package integration

import (
	"testing"

	"github.com/crib-runtime/crib/tests/harness"
)

// snapshot is what the leak checker compares (harness.Snapshot).
type snapshot = harness.Snapshot

const (
	kindNetNS    = harness.KindNetNS
	kindVeth     = harness.KindVeth
	kindMount    = harness.KindMount
	kindCgroup   = harness.KindCgroup
	kindProcess  = harness.KindProcess
	kindIPAM     = harness.KindIPAM
	kindIPTables = harness.KindIPTables
)

func (h *Harness) snapshot() snapshot { return h.Snapshot() }

// checkLeaks waits up to 10s for the host to be back to before, then fails
// the test naming each leftover.
func (h *Harness) checkLeaks(t testing.TB, before snapshot, when string) {
	t.Helper()
	h.CheckLeaks(t, before, when)
}

func (h *Harness) ownsProcess(pid int) bool { return h.OwnsProcess(pid) }

func leaks(before, after snapshot) []string             { return harness.Leaks(before, after) }
func podChains(rules, subnet string) []string           { return harness.PodChains(rules, subnet) }
func procStat(pid int) (start, state string)            { return harness.ProcStat(pid) }
func mentionsPod(line string, ids map[string]bool) bool { return harness.MentionsPod(line, ids) }
