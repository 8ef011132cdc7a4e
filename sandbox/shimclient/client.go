// Package shim is cribd's side of crib-shim, the per-pod monitor: Launch
// starts a shim for a pod run directory, Connect re-attaches to a running
// one (after a cribd restart), and Client calls its RPC methods (api/shim).
package shimclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/procfs"
)

// LaunchOptions say how to start a shim.
type LaunchOptions struct {
	// Binary is the crib-shim executable.
	Binary string
	// Dir is the pod run directory; created if missing.
	Dir string
	// LogLevel is passed as --log-level if set.
	LogLevel string
}

// Client talks to one shim. Its methods are safe for concurrent use.
type Client struct {
	dir      string
	pid      int
	pidStart uint64 // start time of pid, to tell a reused PID apart
	rpc      *rpc.Client
	// exited is closed when the shim, started by this cribd, has been
	// reaped; nil after Connect.
	exited <-chan struct{}
}

// Launch starts crib-shim for opts.Dir and waits (bounded by ctx) until it
// reports ready, then connects to it. The shim runs in its own session with
// stdin and stdout on /dev/null and stderr appended to <Dir>/shim.log, so it
// survives cribd. If it does not become ready, it is killed and the error
// includes the shim's own report.
func Launch(ctx context.Context, opts LaunchOptions) (_ *Client, retErr error) {
	if opts.Binary == "" || opts.Dir == "" {
		return nil, errdefs.InvalidArgument("launch shim: binary and dir are required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, shimapi.LogName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("launch shim: %w", err)
	}
	defer r.Close()

	args := []string{"--dir", dir}
	if opts.LogLevel != "" {
		args = append(args, "--log-level", opts.LogLevel)
	}
	cmd := exec.Command(opts.Binary, args...)
	// One P: a shim mostly waits, and a second P's caches and GC worker
	// cost PSS in every shim (docs/architecture.md, "Measurements behind
	// the shim's design"). It has to be set before the Go runtime starts:
	// shrinking later with runtime.GOMAXPROCS frees none of it.
	// libcontainer passes the shim's GOMAXPROCS on to its init re-exec,
	// which then also starts with one P instead of shrinking to it.
	// Without NOTIFY_SOCKET: it is cribd's, from systemd (Type=notify),
	// and a shim outlives cribd; the OCI runtimes of runtime handlers
	// would also take it as a request to wait for the container's READY=1
	// (internal/shim/ocicli drops it there too).
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "NOTIFY_SOCKET=") })
	cmd.Env = append(env, "GOMAXPROCS=1")
	cmd.Dir = dir
	cmd.Stderr = logf              // stdin, stdout: /dev/null
	cmd.ExtraFiles = []*os.File{w} // fd 3 == shimapi.ReadyFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("launch shim %s: %w", opts.Binary, err)
	}
	// Reap the shim if it exits while this cribd lives. (No Release: it
	// would make Wait fail; the shim survives cribd anyway, as nothing ties
	// it to cribd but the parent link, which the kernel moves on exit.)
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		if retErr != nil {
			_ = cmd.Process.Kill()
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
			}
		}
	}()

	line, err := readReady(ctx, r)
	switch {
	case err == nil && line == "ok":
	case err == nil:
		return nil, fmt.Errorf("launch shim in %s: %s", dir, line)
	case errors.Is(err, io.EOF):
		status := "closed the ready pipe"
		select {
		case <-exited:
			status = fmt.Sprintf("exited before ready (%v)", waitErr)
		case <-time.After(time.Second):
		}
		return nil, fmt.Errorf("launch shim in %s: %s; see %s", dir, status, filepath.Join(dir, shimapi.LogName))
	default:
		return nil, fmt.Errorf("launch shim in %s: wait for ready: %w", dir, err)
	}
	c, err := connect(dir)
	if err != nil {
		return nil, err
	}
	c.exited = exited
	return c, nil
}

// readReady reads the shim's one-line report from r, giving up when ctx is
// done.
func readReady(ctx context.Context, r *os.File) (string, error) {
	// Only ctx's own end interrupts the read, so ctx.Err() is set then.
	stop := context.AfterFunc(ctx, func() { _ = r.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return "", ctx.Err()
		}
		if errors.Is(err, io.EOF) && line != "" {
			return strings.TrimSpace(line), nil
		}
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// Connect connects to the shim already running for dir. If none answers, the
// error wraps errdefs.ErrUnavailable.
func Connect(dir string) (*Client, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return connect(dir)
}

func connect(dir string) (*Client, error) {
	data, err := os.ReadFile(filepath.Join(dir, shimapi.PIDName))
	if err != nil {
		return nil, errdefs.Unavailable("connect to shim in %s: %w", dir, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return nil, errdefs.Unavailable("connect to shim in %s: bad pid file %q", dir, data)
	}
	start, err := procfs.StartTime(pid)
	if err != nil {
		return nil, errdefs.Unavailable("connect to shim in %s: shim %d is gone: %w", dir, pid, err)
	}
	conn, err := net.DialTimeout("unix", filepath.Join(dir, shimapi.SocketName), 5*time.Second)
	if err != nil {
		return nil, errdefs.Unavailable("connect to shim in %s: %w", dir, err)
	}
	return &Client{dir: dir, pid: pid, pidStart: start, rpc: jsonrpc.NewClient(conn)}, nil
}

// Dir is the pod run directory of the shim.
func (c *Client) Dir() string { return c.dir }

// Pid is the shim's PID.
func (c *Client) Pid() int { return c.pid }

// Close closes the connection; the shim keeps running.
func (c *Client) Close() error { return c.rpc.Close() }

// Create creates a container and returns its init's host PID. The init waits
// for Start.
func (c *Client) Create(ctx context.Context, req *shimapi.CreateRequest) (int, error) {
	var resp shimapi.CreateResponse
	if err := c.call(ctx, shimapi.MethodCreate, req, &resp); err != nil {
		return 0, err
	}
	return resp.Pid, nil
}

// Start starts a created container's process.
func (c *Client) Start(ctx context.Context, id string) error {
	return c.call(ctx, shimapi.MethodStart, &shimapi.IDRequest{ID: id}, &shimapi.Empty{})
}

// Kill sends sig to a container's init; a container that already exited is
// not an error.
func (c *Client) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	return c.call(ctx, shimapi.MethodKill, &shimapi.KillRequest{ID: id, Signal: int(sig)}, &shimapi.Empty{})
}

// State returns a container's state; an unknown ID wraps errdefs.ErrNotFound.
func (c *Client) State(ctx context.Context, id string) (*shimapi.State, error) {
	var st shimapi.State
	if err := c.call(ctx, shimapi.MethodState, &shimapi.IDRequest{ID: id}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Delete kills (if needed) and removes a container; an unknown ID is not an
// error.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.call(ctx, shimapi.MethodDelete, &shimapi.IDRequest{ID: id}, &shimapi.Empty{})
}

// Shutdown deletes every container of the shim and waits (bounded by ctx)
// until the shim process is gone: reaped, if this process launched it;
// otherwise gone or a zombie (its parent reaps it). The Client is closed
// afterwards.
func (c *Client) Shutdown(ctx context.Context) error {
	if err := c.call(ctx, shimapi.MethodShutdown, &shimapi.Empty{}, &shimapi.Empty{}); err != nil {
		return err
	}
	defer c.rpc.Close()
	if c.exited != nil {
		select {
		case <-c.exited:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("shim %d in %s did not exit: %w", c.pid, c.dir, ctx.Err())
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for c.alive() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("shim %d in %s did not exit: %w", c.pid, c.dir, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// alive reports whether the shim process still runs: same PID and start
// time, and not a zombie.
func (c *Client) alive() bool {
	start, err := procfs.StartTime(c.pid)
	return err == nil && start == c.pidStart
}

// call runs method, honouring ctx. If ctx ends first the call is abandoned
// (the shim still completes it).
func (c *Client) call(ctx context.Context, method string, args, reply any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	call := c.rpc.Go(method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
	if call.Error == nil {
		return nil
	}
	var se rpc.ServerError
	if errors.As(call.Error, &se) {
		return remoteError(string(se))
	}
	// The connection broke: the shim is gone or restarting.
	return errdefs.Unavailable("%s to shim in %s: %w", method, c.dir, call.Error)
}

// remoteError rebuilds an error from the shim's message. The shim ends a
// message with ": <sentinel>" when it wraps an errdefs sentinel; the result
// then matches that sentinel with errors.Is and reads exactly as the shim
// wrote it.
func remoteError(msg string) error {
	if m, ok := strings.CutPrefix(msg, shimapi.UnknownMethodPrefix); ok {
		// A shim started by an older crib keeps running its own binary
		// across cribd upgrades and lacks the newer calls.
		return &shimError{
			msg:  fmt.Sprintf("this pod's shim predates %s (it was started by an older crib); recreate the pod to use it", m),
			kind: errdefs.ErrFailedPrecondition,
		}
	}
	for _, kind := range []error{
		errdefs.ErrNotFound,
		errdefs.ErrAlreadyExists,
		errdefs.ErrFailedPrecondition,
		errdefs.ErrInvalidArgument,
		errdefs.ErrUnavailable,
		errdefs.ErrUnimplemented,
	} {
		if strings.HasSuffix(msg, ": "+kind.Error()) {
			return &shimError{msg: msg, kind: kind}
		}
	}
	return errors.New(msg)
}

// shimError is an error reported by the shim that belongs to an errdefs kind.
type shimError struct {
	msg  string
	kind error
}

func (e *shimError) Error() string { return e.msg }
func (e *shimError) Unwrap() error { return e.kind }
