//go:build node

package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// run runs a command and fails the test if it fails; it returns stdout.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, errOut, err := runRaw(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// runRaw runs a command with a 2 minute limit.
func runRaw(name string, args ...string) (stdout, stderr string, err error) {
	return runRawTimeout(2*time.Minute, name, args...)
}

// runRawTimeout runs a command with the given limit.
func runRawTimeout(limit time.Duration, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	// A child the command left holding its output open must not hold the
	// test past the limit: Wait gives up on the pipes 10 s after the kill.
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	return o.String(), e.String(), err
}

// crictl runs crictl against crib.service's socket (/etc/crictl.yaml).
func crictl(t testing.TB, args ...string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "crictl", args...))
}

// crictlJSON runs crictl and decodes its stdout into v.
func crictlJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := crictl(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("crictl %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// procStart is a process's start time (field 22 of /proc/PID/stat), which
// with the PID names one process across PID reuse; "" when it is gone.
func procStart(pid int) string {
	start, state := harness.ProcStat(pid)
	if state == "Z" {
		return ""
	}
	return start
}

// journal is the unit's last log lines, for failure messages.
func journal(unit string) string {
	out, _ := exec.Command("journalctl", "-u", unit, "--no-pager", "-n", "60").CombinedOutput()
	return string(out)
}

// dumpOnFailure prints crib's journal when the test fails.
func dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("journalctl -u crib:\n%s", journal("crib"))
		}
	})
}

// leftovers names what still mentions any of ids on the node: cgroup
// directories (either driver puts the ID in the name), mounts, processes
// whose command line holds it, and netns pins.
func leftovers(ids ...string) []string {
	var found []string
	mentions := func(s string) bool {
		for _, id := range ids {
			if id != "" && strings.Contains(s, id) {
				return true
			}
		}
		return false
	}
	_ = filepath.WalkDir("/sys/fs/cgroup", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && mentions(d.Name()) {
			found = append(found, "cgroup "+path)
			return filepath.SkipDir
		}
		return nil
	})
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if mentions(sc.Text()) {
				found = append(found, "mount "+sc.Text())
			}
		}
		f.Close()
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || procStart(pid) == "" {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if s := strings.ReplaceAll(string(cmdline), "\x00", " "); mentions(s) {
			found = append(found, fmt.Sprintf("process %d: %s", pid, s))
		}
	}
	for _, dir := range []string{"/run/netns", "/var/run/netns"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if mentions(e.Name()) {
				found = append(found, "netns "+filepath.Join(dir, e.Name()))
			}
		}
	}
	return found
}

// checkGone fails the test naming whatever of ids is still on the node,
// waiting up to 30s for asynchronous teardown to finish.
func checkGone(t testing.TB, ids ...string) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "nothing left of "+strings.Join(ids, ", "), func() (bool, string) {
		left := leftovers(ids...)
		return len(left) == 0, strings.Join(left, "\n")
	})
}

// exampleImage is the image docs/examples/container.json names; the README
// pulls it first, as crictl create does not.
const exampleImage = "docker.io/library/busybox:latest"

// examplePod pulls exampleImage, runs docs/examples/pod.json and registers
// its removal; it returns the pod ID.
func examplePod(t *testing.T) string {
	t.Helper()
	crictl(t, "pull", exampleImage)
	pod := crictl(t, "runp", shareFile("pod.json"))
	t.Cleanup(func() {
		_, _, _ = runRaw("crictl", "stopp", pod)
		_, _, _ = runRaw("crictl", "rmp", pod)
	})
	return pod
}
