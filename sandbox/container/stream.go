package container

import (
	"context"
	"fmt"
	"os"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
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
