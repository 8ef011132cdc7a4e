//go:build node

package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppArmor: on this AppArmor node cribd loaded crib-default at start;
// pause and a container that asks for nothing run under it, as do
// RuntimeDefault and the deprecated "runtime/default"; Unconfined runs
// unconfined; a Localhost profile that is not loaded is refused naming it;
// crib-default stops a write to a kernel knob the container could
// otherwise make. critest's AppArmor specs run in TestCritest.
func TestAppArmor(t *testing.T) {
	dumpOnFailure(t)
	profiles, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil || !strings.Contains(string(profiles), "crib-default (enforce)\n") {
		t.Fatalf("crib-default is not loaded (%v):\n%s", err, profiles)
	}
	pod := examplePod(t)
	pause := infoPID(t, "inspectp", pod)
	if got := attrCurrent(t, pause); got != "crib-default (enforce)" {
		t.Errorf("pause runs under %q, want crib-default", got)
	}
	dir := t.TempDir()
	create := func(name, securityContext string) (string, error) {
		cfg := fmt.Sprintf(`{"metadata": {"name": %q}, "image": {"image": "busybox"}, "command": ["sleep", "600"],
			"linux": {"security_context": %s}}`, name, securityContext)
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runRaw("crictl", "create", pod, path, shareFile("pod.json"))
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, errOut)
		}
		return strings.TrimSpace(out), nil
	}
	var ids []string
	for _, tc := range []struct{ name, sc, want string }{
		{"plain", `{}`, "crib-default (enforce)"},
		{"runtime-default", `{"apparmor": {"profile_type": 0}}`, "crib-default (enforce)"},
		{"legacy-string", `{"apparmor_profile": "runtime/default"}`, "crib-default (enforce)"},
		{"unconfined", `{"apparmor": {"profile_type": 1}}`, "unconfined"},
	} {
		id, err := create(tc.name, tc.sc)
		if err != nil {
			t.Fatalf("create %s: %v", tc.name, err)
		}
		ids = append(ids, id)
		startContainer(t, id)
		if got := execIn(t, id, "cat", "/proc/self/attr/current"); got != tc.want {
			t.Errorf("%s: exec runs under %q, want %q", tc.name, got, tc.want)
		}
	}
	// Root in the plain container may write kernel.printk by the default
	// seccomp profile and capabilities' leave; crib-default denies it.
	if out, errOut, code, err := execRaw(t, ids[0], "sh", "-c", "echo 4 > /proc/sys/kernel/printk"); err != nil {
		t.Errorf("exec in %s: %v", ids[0], err)
	} else if code == 0 {
		t.Errorf("crib-default let the container write kernel.printk: %s %s", out, errOut)
	}
	if _, err := create("missing", `{"apparmor": {"profile_type": 2, "localhost_ref": "crib-no-such-profile"}}`); err == nil ||
		!strings.Contains(err.Error(), "FailedPrecondition") || !strings.Contains(err.Error(), "crib-no-such-profile") {
		t.Errorf("a Localhost profile that is not loaded: %v, want FailedPrecondition naming it", err)
	}
	removePod(t, pod)
	checkGone(t, append(ids, pod)...)
}

// attrCurrent is the AppArmor confinement of a process.
func attrCurrent(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/attr/current", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
