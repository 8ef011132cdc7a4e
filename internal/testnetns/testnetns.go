// Package testnetns gives tests network namespaces of their own: the
// network packages' kernel tests run their links, addresses and nftables
// inside one, never on the host's.
package testnetns

import (
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
)

// New makes a network namespace, closed and unmounted when the test ends.
func New(t testing.TB) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		if err := testutils.UnmountNS(n); err != nil {
			t.Errorf("unmount netns: %v", err)
		}
	})
	return n
}
