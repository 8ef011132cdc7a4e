package container

import (
	"context"
	"fmt"
	"os"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// AttachOptions say which of a running container's streams an attach
// session takes.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// AttachSession is a session on a running container's stdio, served by
// its shim. Stdin (if asked for) is the write end of the session's input:
// closing it ends the session, or, for a container created with
// stdin_once, closes the container's stdin. Stdout and Stderr are the
// read ends of the live output; they reach EOF when the container's output
// ends or the session ends. With a terminal (Tty) there is no Stderr.
// Close the files when done.
type AttachSession struct {
	Stdin          *os.File
	Stdout, Stderr *os.File
	Tty            bool
	containerID    string
	conn           shimclient.Conn
}

// Close closes every descriptor of s that is still open.
func (s *AttachSession) Close() {
	for _, f := range []*os.File{s.Stdin, s.Stdout, s.Stderr} {
		if f != nil {
			f.Close()
		}
	}
}

// Resize sets the size of the container's terminal.
func (s *AttachSession) Resize(ctx context.Context, width, height uint16) error {
	if err := s.conn.Resize(ctx, s.containerID, width, height); err != nil {
		return fmt.Errorf("resize terminal of container %s: %w", s.containerID, err)
	}
	return nil
}

// CheckAttach returns nil if an attach session with stdin (or without) can
// start on container id: it exists (else NotFound), runs (else
// FailedPrecondition), and was created with stdin if stdin is asked for
// (else FailedPrecondition).
func (m *Manager) CheckAttach(id string, stdin bool) error {
	_, _, err := m.attachable(id, stdin)
	return err
}

func (m *Manager) attachable(id string, stdin bool) (*ctr, shimclient.Conn, error) {
	c, conn, err := m.runningContainer(id)
	if err != nil {
		return nil, nil, err
	}
	if stdin && !m.containerView(c).Shim.Stdin {
		return nil, nil, errdefs.FailedPrecondition("container %s was not created with stdin (config.stdin): cannot attach to its stdin", c.rec.ID)
	}
	return c, conn, nil
}

// Attach starts a session on a running container's stdio. The session
// always gets the container's stdout, which tells its end; it gets
// stderr only without a terminal.
func (m *Manager) Attach(ctx context.Context, id string, opts AttachOptions) (*AttachSession, error) {
	c, conn, err := m.attachable(id, opts.Stdin)
	if err != nil {
		return nil, err
	}
	tty := m.containerView(c).Shim.Tty
	req := &shimapi.AttachRequest{ID: c.rec.ID, Stdin: opts.Stdin, Stdout: true, Stderr: opts.Stderr && !tty}
	resp, err := conn.Attach(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("attach to container %s: %w", c.rec.ID, err)
	}
	s := &AttachSession{Tty: resp.Tty, containerID: c.rec.ID, conn: conn}
	files := resp.Files
	if req.Stdin {
		s.Stdin, files = files[0], files[1:]
	}
	s.Stdout, files = files[0], files[1:]
	if req.Stderr {
		s.Stderr = files[0]
	}
	return s, nil
}
