//go:build node

package node

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// critestFocus picks critest v1.36.0's specs this node adds to the host
// lane's: the 9 AppArmor specs (the host has no AppArmor), the cgroup
// resource spec (a 15 MiB memory and swap limit ends in OOMKilled, exit
// 137) and the 5 stats specs (ContainerStats and ListContainerStats by ID,
// nil filter and labels), which read cgroup v2 here. critest 1.36 has no
// spec for ListPodSandboxStats or UpdateContainerResources.
const critestFocus = `AppArmor|Container OOM|stats`

// critestSpecs is how many specs critestFocus selects (critest
// -ginkgo.dry-run); a different count means critest's names moved.
const critestSpecs = 15

// TestCritest runs critest's AppArmor, resource and stats specs in one
// critest run against crib.service on the systemd cgroup driver, the
// driver kubeadm gives kubelet. critest asks RuntimeConfig for the driver
// and, as it is systemd, sends every pod the cgroup parent "/test.slice",
// the full path of the slice test.slice, which crib takes as that slice
// (as it does kubelet's full slice paths).
func TestCritest(t *testing.T) {
	// Registered before dumpOnFailure, so it runs after it: what failed
	// ends the test's output, where CI's excerpt of a failure looks.
	var failures string
	t.Cleanup(func() {
		if failures != "" {
			t.Logf("critest's failures:\n%s", failures)
		}
	})
	dumpOnFailure(t)
	withCgroupDriver(t, "systemd")
	// critest loads its test profiles with "sudo apparmor_parser"; the
	// suite runs as root in a guest without sudo.
	if _, err := exec.LookPath("sudo"); err != nil {
		if err := os.WriteFile("/usr/local/bin/sudo", []byte("#!/bin/sh\nexec \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove("/usr/local/bin/sudo") })
	}
	begin := time.Now()
	out, errOut, err := runRawTimeout(15*time.Minute, shareBin("critest"),
		"-runtime-endpoint", "unix://"+criSocket, "-image-endpoint", "unix://"+criSocket,
		"-ginkgo.focus", critestFocus, "-ginkgo.no-color")
	took := time.Since(begin).Round(time.Second)
	ran := ""
	if i := strings.Index(out, "Ran "); i >= 0 {
		ran = strings.SplitN(out[i:], "\n", 2)[0]
	}
	if err != nil || !strings.Contains(out, "SUCCESS!") {
		failures = ginkgoFailures(out)
		t.Fatalf("critest (%v): %v\n%s\n%s", took, err, out, errOut)
	}
	t.Logf("critest under the systemd driver, %v: %s", took, ran)
	if want := "Ran " + strconv.Itoa(critestSpecs) + " of "; !strings.HasPrefix(ran, want) {
		t.Errorf("critest: %q, want %q... (focus %q)", ran, want, critestFocus)
	}
	// Its pods are gone, and with the last of them the slice crib made.
	if _, err := os.Stat("/sys/fs/cgroup/test.slice"); !os.IsNotExist(err) {
		status, _, _ := runRaw("systemctl", "status", "--no-pager", "test.slice")
		t.Errorf("/sys/fs/cgroup/test.slice is still there after critest (%v): %s", err, status)
	}
}

// ginkgoFailures returns the "[FAILED]" lines of a ginkgo report, each with
// the lines after it up to the next separator: the failure's message and
// where it was raised.
func ginkgoFailures(out string) string {
	var b strings.Builder
	lines := strings.Split(out, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.Contains(lines[i], "[FAILED]") {
			continue
		}
		for j := i; j < len(lines) && j < i+12; j++ {
			if j > i && strings.HasPrefix(strings.TrimSpace(lines[j]), "----") {
				break
			}
			b.WriteString(lines[j])
			b.WriteByte('\n')
			i = j
		}
	}
	return b.String()
}
