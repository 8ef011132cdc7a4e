package shimclient

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/procfs"
)

// Conn is what cribd asks of a pod's crib-shim (*Client); a Launcher gives
// them. Pods and containers use the same connection, one per pod.
type Conn interface {
	Create(ctx context.Context, req *shimapi.CreateRequest) (int, error)
	Start(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
	Exec(ctx context.Context, req *shimapi.ExecRequest) (*shimapi.ExecResponse, error)
	ExecStart(ctx context.Context, req *shimapi.ExecStartRequest) (*shimapi.ExecStartResponse, error)
	ExecWait(ctx context.Context, id string, pid int) (int, error)
	Attach(ctx context.Context, req *shimapi.AttachRequest) (*shimapi.AttachResponse, error)
	Resize(ctx context.Context, id string, width, height uint16) error
	ReopenLog(ctx context.Context, id string) error
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
	Checkpoint(ctx context.Context, req *shimapi.CheckpointRequest) error
	Shutdown(ctx context.Context) error
	Close() error
}

// CreateStart creates and starts a container and returns its host PID.
func CreateStart(ctx context.Context, conn Conn, id, bundle string, spec *specs.Spec) (int, error) {
	pid, err := conn.Create(ctx, &shimapi.CreateRequest{ID: id, Bundle: bundle, Spec: spec})
	if err != nil {
		return 0, err
	}
	if err := conn.Start(ctx, id); err != nil {
		_ = conn.Delete(ctx, id)
		return 0, err
	}
	return pid, nil
}

// Launcher starts and reaches pods' crib-shims. The default is
// NewLauncher's, running the crib-shim binary; unit tests give a fake.
type Launcher interface {
	// Launch starts a shim serving the pod run directory dir and returns
	// a connection to it.
	Launch(ctx context.Context, dir string) (Conn, error)
	// Connect reaches the shim serving dir, launched earlier (perhaps by
	// an earlier cribd).
	Connect(dir string) (Conn, error)
}

// NewLauncher is the Launcher of a real cribd: it runs binary with
// logLevel.
func NewLauncher(binary, logLevel string) Launcher {
	return launcher{binary: binary, logLevel: logLevel}
}

// launcher's methods return a nil interface on error, never an interface
// holding a nil *Client (which would not compare equal to nil).
type launcher struct {
	binary, logLevel string
}

func (l launcher) Launch(ctx context.Context, dir string) (Conn, error) {
	c, err := Launch(ctx, LaunchOptions{Binary: l.binary, Dir: dir, LogLevel: l.logLevel})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (launcher) Connect(dir string) (Conn, error) {
	c, err := Connect(dir)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// KillServing kills the shim whose PID file is in dir, if that PID is
// still a crib-shim serving dir. It is the fallback when the shim does not
// answer.
func KillServing(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, shimapi.PIDName))
	if err != nil {
		return nil // never started, or its run dir is gone with a reboot
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), dir) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill shim %d: %w", pid, err)
	}
	return nil
}

// PID returns the PID of the crib-shim serving dir, or 0 if none runs: no
// PID file (the shim exited, or /run is new since a reboot), or its PID
// now names another process or a zombie.
func PID(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, shimapi.PIDName))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	if st, err := procfs.ReadStat(pid); err != nil || st.Dead() {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
		return 0
	}
	return pid
}

// Alive reports whether a shim still serves dir (PID: a zombie, or a
// reused PID, is none).
func Alive(dir string) bool { return PID(dir) != 0 }
