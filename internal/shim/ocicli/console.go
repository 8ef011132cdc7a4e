package ocicli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/crib-runtime/crib/internal/shim/stdio"
)

// consoleSocket is the unix socket a runtime sends a new terminal's master
// to (--console-socket takes a path). It lives in a fresh directory under
// the temporary directory: a path in the bundle would pass the 107 bytes a
// socket address holds.
type consoleSocket struct {
	dir, path string
	l         *net.UnixListener
}

func listenConsole() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "crib-console-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{dir: dir, path: path, l: l}, nil
}

// forward receives the terminal's master the runtime sent (it has exited,
// so the connection waits in the backlog) and sends it on to: the socket
// the shim reads it from, as from libcontainer.
func (s *consoleSocket) forward(to *os.File) error {
	if err := s.l.SetDeadline(time.Now().Add(consoleTimeout)); err != nil {
		return err
	}
	conn, err := s.l.AcceptUnix()
	if err != nil {
		return fmt.Errorf("console socket: no terminal from the runtime: %w", err)
	}
	defer conn.Close()
	f, err := conn.File()
	if err != nil {
		return err
	}
	defer f.Close()
	master, err := stdio.RecvFile(f)
	if err != nil {
		return fmt.Errorf("receive terminal: %w", err)
	}
	defer master.Close()
	if err := stdio.SendFile(to, master); err != nil {
		return fmt.Errorf("pass terminal on: %w", err)
	}
	return nil
}

// Close stops listening and removes the socket's directory.
func (s *consoleSocket) Close() {
	s.l.Close()
	os.RemoveAll(s.dir)
}
