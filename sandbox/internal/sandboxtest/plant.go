package sandboxtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/procfs"
)

// Planted are the paths a test put in a step's way: not the code under
// test's to remove, and removed (Remove) before the check for leftovers.
type Planted struct {
	paths []string
}

// File puts a file at path, where a step will fail on it.
func (p *Planted) File(t testing.TB, path string) {
	t.Helper()
	Mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p.paths = append(p.paths, path)
}

// Dir puts a directory at path, where a step will fail on it.
func (p *Planted) Dir(t testing.TB, path string) {
	t.Helper()
	Mkdir(t, path)
	p.paths = append(p.paths, path)
}

// Remove removes what was planted.
func (p *Planted) Remove(t testing.TB) {
	t.Helper()
	for _, path := range p.paths {
		if err := os.RemoveAll(path); err != nil {
			t.Fatal(err)
		}
	}
}

// Mkdir makes path and its parents, or fails t.
func Mkdir(t testing.TB, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

// ReplaceWithDir puts an empty directory where the file path is, so that
// the next atomic write of it fails.
func ReplaceWithDir(path string) {
	_ = os.Remove(path)
	_ = os.Mkdir(path, 0o700)
}

// LiveProcess starts a process that lives until t ends, to stand for
// pause and init processes, and returns its PID and start time.
func LiveProcess(t testing.TB) (pid int, start uint64) {
	t.Helper()
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	start, err := procfs.StartTime(sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return sleeper.Process.Pid, start
}

// PodSpec is what RunPodSandbox would pass for a pod with its own
// network, IPC and UTS namespaces.
func PodSpec() state.Sandbox {
	return state.Sandbox{
		Metadata:    state.PodMetadata{Name: "web", Namespace: "default", UID: "u1"},
		Hostname:    "web",
		NetworkMode: state.NamespacePod, PIDMode: state.NamespacePod, IPCMode: state.NamespacePod,
	}
}
