//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/crib-runtime/crib/tests/harness"
)

// nsID identifies a namespace: the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

func (n nsID) String() string { return fmt.Sprintf("%d:%d", n.dev, n.ino) }

// nsOf stats a namespace file (/proc/<pid>/ns/<kind> or a pin).
func nsOf(t testing.TB, path string) nsID {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}
}

func procNS(t testing.TB, pid int, kind string) nsID {
	t.Helper()
	return nsOf(t, fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
}

// pinPath is where crib pins a pod's namespace of kind.
func (h *Harness) pinPath(id, kind string) string {
	if kind == "net" {
		return filepath.Join(h.NetNSDir, "crib-"+id)
	}
	return filepath.Join(h.RunDir, "pods", id, "ns", kind)
}

// procStatus is harness.ProcStatus.
func procStatus(t testing.TB, pid int, key string) []string {
	t.Helper()
	return harness.ProcStatus(t, pid, key)
}

// nsPID returns the last NSpid of pid: its PID in its own PID namespace.
func nsPID(t testing.TB, pid int) string {
	t.Helper()
	f := procStatus(t, pid, "NSpid:")
	return f[len(f)-1]
}

// TestPodNamespaces: pause has its own net, uts and ipc namespaces, the very
// ones crib pinned; two pods have different ones; with the POD PID mode
// pause is PID 1 of its own PID namespace.
func TestPodNamespaces(t *testing.T) {
	h := start(t, Options{})

	cfgA := podConfig("ns-a")
	cfgA["linux"] = map[string]any{
		"security_context": map[string]any{
			"namespace_options": map[string]any{"pid": 0}, // POD
		},
	}
	a := h.RunPod(cfgA)
	b := h.RunPod(podConfig("ns-b"))
	pidA, pidB := h.PausePID(a), h.PausePID(b)
	if name := processName(pidA); name != "crib-pause" {
		t.Errorf("pod %s: pid %d is %q, not crib-pause", a, pidA, name)
	}

	self := os.Getpid()
	for _, kind := range []string{"net", "uts", "ipc"} {
		host := procNS(t, self, kind)
		for _, p := range []struct {
			id  string
			pid int
		}{{a, pidA}, {b, pidB}} {
			got := procNS(t, p.pid, kind)
			if got == host {
				t.Errorf("pod %s: pause (pid %d) shares the host's %s namespace %v", p.id, p.pid, kind, got)
			}
			pin := h.pinPath(p.id, kind)
			if _, err := os.Stat(pin); err != nil {
				t.Errorf("pod %s: %s pin: %v", p.id, kind, err)
				continue
			}
			if pinned := nsOf(t, pin); pinned != got {
				t.Errorf("pod %s: %s pin %s is namespace %v, pause's is %v", p.id, kind, pin, pinned, got)
			}
		}
		if procNS(t, pidA, kind) == procNS(t, pidB, kind) {
			t.Errorf("pods %s and %s share a %s namespace", a, b, kind)
		}
	}

	if procNS(t, pidA, "pid") == procNS(t, self, "pid") {
		t.Errorf("pod %s with namespace_options.pid=POD: pause shares the host's PID namespace", a)
	}
	if got := nsPID(t, pidA); got != "1" {
		t.Errorf("pod %s with namespace_options.pid=POD: pause (host pid %d) is pid %s in its namespace, want 1", a, pidA, got)
	}
}

// execIn runs a command in one namespace of pid, through nsenter.
func execIn(pid int, kind string, args ...string) (string, error) {
	flag := map[string]string{"net": "--net", "uts": "--uts", "ipc": "--ipc", "pid": "--pid", "mnt": "--mount"}[kind]
	full := append([]string{"--target", fmt.Sprint(pid), flag, "--"}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	return string(out), err
}
