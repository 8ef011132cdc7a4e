//go:build e2e

// Package e2e runs a real kubelet (standalone: no API server, static pods
// from a manifest directory) against a real cribd, with images from a
// loopback registry that cribd's registries.conf rewrites the public
// registries to.
//
//	make build && scripts/build-cri-tools.sh && scripts/build-kubelet.sh
//	go test -tags e2e -count=1 -v ./tests/e2e/...     (or: make test-e2e)
//
// Binaries: cribd, crib-shim, crib-pause from $CRIB_BIN_DIR (default
// <repo>/bin); crictl from $CRICTL; kubelet from $KUBELET (default
// $CRIB_TOOLS_DIR/kube-v1.37.2/kubelet, the multi-call binary of
// scripts/build-kube.sh). CRIB_E2E_KEEP=1 keeps each test's temp dir
// (configs, cribd.log, kubelet.log).
package e2e

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if err := requireEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot run: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
