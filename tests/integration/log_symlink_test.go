//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestContainerLogSymlinks: a symlink in the pod's log directory, as the
// log file or as a directory on log_path, is refused with an error naming
// log_path, at CreateContainer and at ReopenContainerLog, and crib writes
// nothing where it points.
func TestContainerLogSymlinks(t *testing.T) {
	h, podID, pod := containerPod(t)
	c := h.client()
	logs := pod["log_directory"].(string)
	outside := filepath.Join(h.Dir, "outside")
	for _, d := range []string{logs, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "x", Namespace: "y", Uid: "z"},
		LogDirectory: logs,
	}
	if err := os.Symlink(filepath.Join(outside, "file-victim"), filepath.Join(logs, "file.log")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(logs, "dir")); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ name, logPath string }{
		{"log file is a symlink", "file.log"},
		{"log directory is a symlink", "dir/0.log"},
		{"deeper directory is a symlink", "dir/sub/0.log"},
	} {
		_, err := c.CreateContainer(ctx30(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: podCfg,
			Config: badContainerConfig(func(cfg *runtimeapi.ContainerConfig) {
				cfg.Metadata.Name = fmt.Sprintf("bad%d", i)
				cfg.LogPath = tc.logPath
			})})
		wantRefused(t, tc.name, err, "log_path")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("CreateContainer wrote %s through a symlink", ents[0].Name())
	}
	if out := h.Crictl("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("refused creates left containers: %q", out)
	}

	// Rotation: the log is renamed away and a symlink put in its place.
	cfg := shellContainer("logger", "while true; do echo tick; sleep 0.2; done")
	cfg["log_path"] = "logger/0.log"
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	logFile := filepath.Join(logs, "logger", "0.log")
	eventually(t, 10*time.Second, "the container logs", func() (bool, string) {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), "tick"), string(b)
	})
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "reopen-victim")
	if err := os.Symlink(victim, logFile); err != nil {
		t.Fatal(err)
	}
	_, err := c.ReopenContainerLog(ctx30(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
	wantRefused(t, "ReopenContainerLog onto a symlink", err, "log_path")
	if _, err := os.Lstat(victim); err == nil {
		t.Errorf("ReopenContainerLog created %s through a symlink", victim)
	}
	// The container keeps logging to the file it had.
	size := func() int64 {
		st, err := os.Stat(logFile + ".1")
		if err != nil {
			return 0
		}
		return st.Size()
	}
	before := size()
	eventually(t, 10*time.Second, "the container still logs to its old file", func() (bool, string) {
		return size() > before, "no growth"
	})
	// With the symlink gone, reopening works again.
	if err := os.Remove(logFile); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReopenContainerLog(ctx30(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Errorf("ReopenContainerLog after the symlink went: %v", err)
	}
	if st, err := os.Lstat(logFile); err != nil || !st.Mode().IsRegular() {
		t.Errorf("reopened log %s: %v", logFile, err)
	}
	h.Crictl("rmp", "-f", podID)
}

// wantRefused checks that err is InvalidArgument or FailedPrecondition and
// names want.
func wantRefused(t *testing.T, what string, err error, want string) {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || (st.Code().String() != "InvalidArgument" && st.Code().String() != "FailedPrecondition") {
		t.Errorf("%s: got %v, want InvalidArgument or FailedPrecondition", what, err)
		return
	}
	if !strings.Contains(st.Message(), want) {
		t.Errorf("%s: message %q does not name %q", what, st.Message(), want)
	}
}
