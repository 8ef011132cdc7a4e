//go:build integration

package integration

// The integration tests' names for tests/harness: Harness embeds
// harness.Cribd (so the tests can add methods of their own), and the
// lower-case helpers below are thin wrappers kept for the tests that call
// them.

import (
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// Harness runs one real cribd on throwaway directories and drives it with
// the real crictl; see harness.Cribd. Each test that needs cribd starts its
// own with start(t, opts); t.Cleanup stops it, removes the pods it left,
// deletes the bridge and the directories, and fails the test naming
// anything cribd leaked.
type Harness struct {
	*harness.Cribd
	t *testing.T
}

// Options change one harness from the default bridge network.
type Options = harness.Options

const stdCNIDir = harness.StdCNIDir

// The bridge and subnet of this test binary (harness.DefaultNetwork).
var (
	network    = harness.DefaultNetwork()
	bridgeName = network.Bridge
	podPrefix  = network.Prefix
	podSubnet  = network.Subnet
	podOctet   = network.Octet
)

// defaultConflist is the bridge network every harness gets unless Options
// says otherwise.
const defaultConflist = harness.DefaultConflist

// start creates a harness, starts cribd unless opts.NoStart, and registers
// the cleanup.
func start(t *testing.T, opts Options) *Harness {
	t.Helper()
	if opts.Network.Bridge == "" {
		opts.Network = network
	}
	return &Harness{Cribd: harness.Start(t, opts), t: t}
}

func (h *Harness) expand(s string) string { return h.Expand(s) }

func (h *Harness) crictlRaw(args ...string) (stdout, stderr string, err error) {
	return h.CrictlRaw(args...)
}

func binDir() string                       { return harness.BinDir() }
func crictlPath() string                   { return harness.CrictlPath() }
func randomHex(n int) string               { return harness.RandomHex(n) }
func isPodID(s string) bool                { return harness.IsPodID(s) }
func podConfig(name string) map[string]any { return harness.PodConfig(name) }
func processName(pid int) string           { return harness.ProcessName(pid) }
func requireEnv() error                    { return harness.RequireEnv() }
func removeFile(path string) error         { return harness.RemoveFile(path) }
func tail(s string, n int) string          { return harness.Tail(s, n) }
func crictlError(stderr string) string     { return harness.CrictlError(stderr) }
func isClosed(c chan struct{}) bool        { return harness.IsClosed(c) }

// PodStatus is the part of `crictl inspectp -o json` the tests read.
type PodStatus = harness.PodStatus

// PodListEntry is one item of `crictl pods -o json`.
type PodListEntry = harness.PodListEntry

// eventually polls cond every 100ms until it returns true or timeout passes,
// then fails the test with the last reason cond gave.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	harness.Eventually(t, timeout, what, cond)
}
