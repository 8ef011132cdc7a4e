//go:build integration && bench

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCritestContainerd runs critest's validation suite (what
// tests/critest/run.sh runs against cribd) against containerd v2.4.2 on
// this machine, with the same loopback registry, and prints its summary
// and failures: the reference for "every spec containerd passes here".
// `make critest-containerd` runs it; it asserts nothing about containerd.
func TestCritestContainerd(t *testing.T) {
	reg := startRegistry(t, RegistryOptions{})
	d := startContainerd(t, reg.Addr)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(harnessCritest(),
		"--runtime-endpoint", "unix://"+d.Socket, "--image-endpoint", "unix://"+d.Socket,
		"--runtime-service-timeout", "30s", "--image-service-timeout", "30s",
		"-ginkgo.skip", "benchmark", "-ginkgo.no-color", "-ginkgo.json-report", report)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	logPath := filepath.Join(dir, "critest.log")
	_ = os.WriteFile(logPath, out, 0o644)
	summary := regexp.MustCompile(`(?m)^(Ran \d+ of \d+ Specs.*|(SUCCESS|FAIL)! -- .*)$`).FindAllString(string(out), -1)
	benchReport("critest v1.36.0 against containerd v2.4.2: " + strings.Join(summary, "; ") + "\n")
	for _, line := range regexp.MustCompile(`(?m)^\s*\[(FAIL|SKIPPED)\] \[k8s\.io\].*$`).FindAllString(string(out), -1) {
		benchReport("  " + strings.TrimSpace(line) + "\n")
	}
	if len(summary) == 0 {
		t.Fatalf("critest against containerd gave no summary (%v):\n%s", err, tail(string(out), 60))
	}
}

// harnessCritest is the critest binary ($CRITEST or the tools cache).
func harnessCritest() string {
	if p := os.Getenv("CRITEST"); p != "" {
		return p
	}
	return filepath.Join(filepath.Dir(crictlPath()), "critest")
}
