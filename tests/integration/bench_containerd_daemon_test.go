//go:build integration && bench

package integration

// The side-by-side benchmark's containerd is harness.Containerd; these
// wrappers give it this package's network.

import (
	"testing"

	"github.com/crib-runtime/crib/tests/harness"
)

// containerdVersion is what scripts/build-containerd.sh builds by default.
const containerdVersion = harness.ContainerdVersion

// startContainerd starts containerd (harness.StartContainerd) on this test
// binary's octet, pulling from registryAddr.
func startContainerd(t *testing.T, registryAddr string) *harness.Containerd {
	t.Helper()
	return harness.StartContainerd(t, harness.ContainerdOptions{RegistryAddr: registryAddr, Octet: podOctet})
}
