//go:build e2e

package e2e

// The cribd and registry half of the setup comes from tests/harness (shared
// with tests/integration); this file holds what only e2e adds.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/crib-runtime/crib/tests/harness"
)

func kubeletPath() string {
	if p := os.Getenv("KUBELET"); p != "" {
		return p
	}
	return filepath.Join(harness.ToolsDir(), "kube-v1.37.2", "kubelet")
}

func requireEnv() error {
	if err := harness.RequireEnv(); err != nil {
		return err
	}
	if _, err := os.Stat(kubeletPath()); err != nil {
		return fmt.Errorf("%w (run scripts/build-kubelet.sh, or set KUBELET)", err)
	}
	for _, tool := range []string{"docker-registry", "iptables", "ip", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			return err
		}
	}
	return nil
}

// One bridge and /24 per test binary, away from the integration suites'
// 10.88.100-249 and critest's 10.88.99.
var network = harness.PerProcessNetwork("cribe2e", 50, 40)

// Short helpers the scenarios use.
var (
	eventually = harness.Eventually
	readFile   = harness.ReadFile
	tail       = harness.Tail
	isClosed   = harness.IsClosed
	freePort   = harness.FreePort
)
