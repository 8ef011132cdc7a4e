//go:build node

// Package node runs inside the VM lane's guest (scripts/build-guest.sh): a
// Debian 12 node with systemd as PID 1, cgroup v2 and AppArmor, booted by
// tests/node/run.sh. tests/node/suite.sh (make test-node) builds this
// package's test binary on the host, puts it in the guest's share with the
// files below and runs it there with -test.v.
//
// TestMain sets the node up the way a user's would be: crib's binaries in
// /usr/local/bin, scripts/crib.service as /etc/systemd/system/crib.service
// (started, so cribd has sent READY=1), the bridge CNI config,
// /etc/crictl.yaml; and, because the guest has no network, the test images
// served by docker-registry on 127.0.0.1:5000 with registries.conf
// rewriting the public registries to it.
//
// A scenario is one Test function; it uses the crib the unit runs and
// removes what it created (checkGone proves that nothing is left).
package node

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// The share mounted from the host (tests/node/run.sh) and what suite.sh
// puts in it.
const (
	shareDir     = "/mnt/crib"
	registryAddr = "127.0.0.1:5000"
	criSocket    = "/run/crib/crib.sock"
)

// shareFile is a file suite.sh copied into the share's files/.
func shareFile(name string) string { return filepath.Join(shareDir, "files", name) }

// shareBin is a binary tests/node/run.sh put into the share's bin/.
func shareBin(name string) string { return filepath.Join(shareDir, "bin", name) }

func TestMain(m *testing.M) {
	if err := setupNode(); err != nil {
		fmt.Fprintf(os.Stderr, "node: setup: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// setupNode installs crib as the shipped unit and the test images'
// registry, and starts both.
func setupNode() error {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return fmt.Errorf("not a systemd node (%w): run this through tests/node/suite.sh", err)
	}
	installs := []struct{ src, dst string }{
		{shareBin("cribd"), "/usr/local/bin/cribd"},
		{shareBin("crib-shim"), "/usr/local/bin/crib-shim"},
		{shareBin("crib-pause"), "/usr/local/bin/crib-pause"},
		{shareBin("crib-vxlan"), "/opt/cni/bin/crib-vxlan"},
		{shareBin("crictl"), "/usr/local/bin/crictl"},
		{shareFile("crib.service"), "/etc/systemd/system/crib.service"},
		{shareFile("10-crib-bridge.conflist"), "/etc/cni/net.d/10-crib-bridge.conflist"},
	}
	for _, in := range installs {
		if err := command("install", "-D", "-m", modeOf(in.dst), in.src, in.dst); err != nil {
			return err
		}
	}
	crictlYAML := "runtime-endpoint: unix://" + criSocket + "\nimage-endpoint: unix://" + criSocket + "\ntimeout: 60\n"
	if err := os.WriteFile("/etc/crictl.yaml", []byte(crictlYAML), 0o644); err != nil {
		return err
	}
	if err := startRegistry(); err != nil {
		return err
	}
	if err := os.MkdirAll("/etc/containers", 0o755); err != nil {
		return err
	}
	if err := os.WriteFile("/etc/containers/registries.conf", []byte(harness.RegistriesConf(registryAddr, "")), 0o644); err != nil {
		return err
	}
	if err := command("systemctl", "daemon-reload"); err != nil {
		return err
	}
	// Type=notify: this returns when cribd has said READY=1.
	start := time.Now()
	if err := command("systemctl", "enable", "--now", "crib.service"); err != nil {
		out, _ := exec.Command("journalctl", "-u", "crib", "--no-pager", "-n", "50").CombinedOutput()
		return fmt.Errorf("%w\n%s", err, out)
	}
	fmt.Printf("node: crib.service active after %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// modeOf is the install mode for dst: executables but for unit and config
// files.
func modeOf(dst string) string {
	if strings.HasPrefix(dst, "/etc/") {
		return "0644"
	}
	return "0755"
}

// startRegistry serves a copy of the test images' registry storage (the
// share's images/registry, from tests/images/build.sh) as a transient
// systemd service, and waits until it answers.
func startRegistry() error {
	src := filepath.Join(shareDir, "images", "registry")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("no test images in the share (%w): run tests/images/build.sh on the host", err)
	}
	dir := "/var/lib/crib-node-registry"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := command("cp", "-a", src, filepath.Join(dir, "storage")); err != nil {
		return err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"+
		"storage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}}\nhttp: {addr: %q}\n",
		filepath.Join(dir, "storage"), registryAddr)
	if err := os.WriteFile(filepath.Join(dir, "registry.yml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	if err := command("systemd-run", "--unit", "crib-node-registry", "--quiet",
		"docker-registry", "serve", filepath.Join(dir, "registry.yml")); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + registryAddr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			out, _ := exec.Command("journalctl", "-u", "crib-node-registry", "--no-pager", "-n", "20").CombinedOutput()
			return fmt.Errorf("registry on %s did not answer: %v\n%s", registryAddr, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// command runs a setup command, returning its output in the error.
func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
