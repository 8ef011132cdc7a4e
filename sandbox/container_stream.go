package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// ExecOptions say how to set up a streaming exec's stdio.
type ExecOptions struct {
	// Stdin gives the process a pipe as stdin (else /dev/null).
	Stdin bool
	// Tty gives the process a pseudo-terminal; Width and Height are its
	// initial size (0: the kernel's default).
	Tty           bool
	Width, Height uint16
}

// ExecProcess is a process started by ExecStart. With a terminal, Console
// is its master and Stdin, Stdout and Stderr are nil; otherwise Stdout and
// Stderr are the read ends of its output pipes and Stdin, if requested,
// the write end of its input. Close the files when done; Wait returns the
// exit code.
type ExecProcess struct {
	Stdin          *os.File
	Stdout, Stderr *os.File
	Console        *os.File
	containerID    string
	pid            int
	conn           shimclient.Conn
}

// Close closes every descriptor of p that is still open.
func (p *ExecProcess) Close() {
	for _, f := range []*os.File{p.Stdin, p.Stdout, p.Stderr, p.Console} {
		if f != nil {
			f.Close()
		}
	}
}

// Wait waits for the process to exit and returns its exit code (128+signal
// if it was killed).
func (p *ExecProcess) Wait(ctx context.Context) (int, error) {
	code, err := p.conn.ExecWait(ctx, p.containerID, p.pid)
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", p.containerID, err)
	}
	return code, nil
}

// ExecStart starts cmd in a running container as ExecSync does, with its
// stdio handed to the caller for CRI streaming.
func (m *Manager) ExecStart(ctx context.Context, id string, cmd []string, opts ExecOptions) (*ExecProcess, error) {
	if len(cmd) == 0 {
		return nil, errdefs.InvalidArgument("cmd is empty")
	}
	c, conn, err := m.runningContainer(id)
	if err != nil {
		return nil, err
	}
	resp, err := conn.ExecStart(ctx, &shimapi.ExecStartRequest{
		ID: c.rec.ID, Args: cmd, Stdin: opts.Stdin, Tty: opts.Tty, Width: opts.Width, Height: opts.Height,
	})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.rec.ID, err)
	}
	p := &ExecProcess{containerID: c.rec.ID, pid: resp.Pid, conn: conn}
	if opts.Tty {
		p.Console = resp.Files[0]
	} else {
		p.Stdout, p.Stderr = resp.Files[0], resp.Files[1]
		if opts.Stdin {
			p.Stdin = resp.Files[2]
		}
	}
	return p, nil
}

// CheckContainerRunning returns nil if container id exists and runs;
// NotFound or FailedPrecondition otherwise.
func (m *Manager) CheckContainerRunning(id string) error {
	_, _, err := m.runningContainer(id)
	return err
}

// CheckPodReady returns nil if pod id exists and is ready; NotFound or
// FailedPrecondition otherwise.
func (m *Manager) CheckPodReady(id string) error {
	v, err := m.Get(id)
	if err != nil {
		return err
	}
	if !v.Ready {
		return errdefs.FailedPrecondition("pod sandbox %s is not ready", v.ID)
	}
	return nil
}

// DialPod opens a TCP connection to localhost:port inside a ready pod's
// network namespace (on the host for host-network pods), trying IPv4 then
// IPv6 loopback.
func (m *Manager) DialPod(ctx context.Context, podID string, port int32) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, errdefs.InvalidArgument("port %d is out of range", port)
	}
	v, err := m.Get(podID)
	if err != nil {
		return nil, err
	}
	if !v.Ready {
		return nil, errdefs.FailedPrecondition("pod sandbox %s is not ready", v.ID)
	}
	dial := func() (net.Conn, error) {
		var d net.Dialer
		var errs []error
		for _, host := range []string{"127.0.0.1", "::1"} {
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
			if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENETUNREACH) {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
	if v.NetworkMode == state.NamespaceNode || v.NetNSPath == "" {
		conn, err := dial()
		if err != nil {
			return nil, fmt.Errorf("port-forward to pod %s port %d: %w", v.ID, port, err)
		}
		return conn, nil
	}
	netns, err := ns.GetNS(v.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s: open netns: %w", v.ID, err)
	}
	defer netns.Close()
	var conn net.Conn
	// The socket belongs to the namespace it was created in: it stays
	// there once Do switches the thread back.
	err = netns.Do(func(ns.NetNS) error {
		var derr error
		conn, derr = dial()
		return derr
	})
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s port %d: %w", v.ID, port, err)
	}
	return conn, nil
}

// PortForward copies between stream and localhost:port in the pod's network
// namespace until either side closes.
func (m *Manager) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	conn, err := m.DialPod(ctx, podID, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	toPod, fromPod := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		// The client is done sending: let the server see EOF, and keep
		// copying its answer.
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		toPod <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		fromPod <- err
	}()
	// The server closing ends the forward; the client closing only ends
	// its direction.
	select {
	case err = <-fromPod:
	case err = <-toPod:
		if err == nil {
			select {
			case err = <-fromPod:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port-forward to pod %s port %d: %w", podID, port, err)
	}
	return nil
}
