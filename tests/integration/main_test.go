//go:build integration

// Package integration runs the real cribd, crib-shim and crib-pause (from
// $CRIB_BIN_DIR, default <repo>/bin) as root and drives them with the real
// crictl ($CRICTL, default the cache scripts/build-cri-tools.sh fills). Each
// test starts its own cribd on throwaway directories (see Harness) and fails
// if anything it created outlives it.
//
//	make build && scripts/build-cri-tools.sh
//	go test -tags integration -count=1 -v ./tests/integration/...
//
// CRIB_IT_KEEP=1 keeps each test's temp dir (config, cribd.log) for a look.
package integration

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if err := requireEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: cannot run: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
