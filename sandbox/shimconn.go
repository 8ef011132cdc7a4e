package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// ShimConn is what the sandbox manager asks of a pod's crib-shim
// (*shimclient.Client); the manager's ShimLauncher gives them.
type ShimConn interface {
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
	Shutdown(ctx context.Context) error
	Close() error
}

// createStart creates and starts a container and returns its host PID.
func createStart(ctx context.Context, conn ShimConn, id, bundle string, spec *specs.Spec) (int, error) {
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

// ShimLauncher starts and reaches pods' crib-shims. The default is
// sandbox/shimclient's, running Options.ShimBinary; unit tests give a fake.
type ShimLauncher interface {
	// Launch starts a shim serving the pod run directory dir and returns
	// a connection to it.
	Launch(ctx context.Context, dir string) (ShimConn, error)
	// Connect reaches the shim serving dir, launched earlier (perhaps by
	// an earlier cribd).
	Connect(dir string) (ShimConn, error)
}

// shimclientLauncher is the ShimLauncher of a real cribd. Its methods
// return a nil interface on error, never an interface holding a nil
// *Client (which would not compare equal to nil).
type shimclientLauncher struct {
	binary, logLevel string
}

func (l shimclientLauncher) Launch(ctx context.Context, dir string) (ShimConn, error) {
	c, err := shimclient.Launch(ctx, shimclient.LaunchOptions{Binary: l.binary, Dir: dir, LogLevel: l.logLevel})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (shimclientLauncher) Connect(dir string) (ShimConn, error) {
	c, err := shimclient.Connect(dir)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// killShim kills the shim whose PID file is in dir, if that PID is still a
// crib-shim serving dir. It is the fallback when the shim does not answer.
func killShim(dir string) error {
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
