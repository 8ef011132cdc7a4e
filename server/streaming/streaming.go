// Package streaming serves CRI Exec, Attach and PortForward sessions: the
// HTTP server of k8s.io/cri-streaming (SPDY and WebSocket) over crib's
// sandbox manager. The CRI handlers in server/ validate a request and ask
// the Server for a one-time URL; the client (kubelet, crictl) then connects
// to that URL and the Runtime here runs the session.
package streaming

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	cristreaming "k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/crib-runtime/crib/sandbox"
)

// outputDrainTimeout bounds how long Exec keeps copying output after the
// process exited: its children may hold the pipes open.
const outputDrainTimeout = 2 * time.Second

// Sandboxes is what the streaming runtime needs of the sandbox manager.
type Sandboxes interface {
	ExecStart(ctx context.Context, id string, cmd []string, opts sandbox.ExecOptions) (*sandbox.ExecProcess, error)
	Attach(ctx context.Context, id string, opts sandbox.AttachOptions) (*sandbox.AttachSession, error)
	PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error
}

// Server is a running streaming server.
type Server struct {
	cristreaming.Server
	lis  net.Listener
	http *http.Server
	// URL is the base URL the session URLs start with.
	URL string
}

// Options configures the server (api/config's [streaming]).
type Options struct {
	// Address and Port are where it listens; port 0 picks a free one.
	Address string
	Port    int
	// TLSCertFile and TLSKeyFile, both or neither, serve HTTPS with this
	// PEM certificate and key, read at Start.
	TLSCertFile string
	TLSKeyFile  string
	// TLSClientCAFile, with TLS, requires clients to present a
	// certificate signed by one of its PEM CAs.
	TLSClientCAFile string
	// IdleTimeout ends a session with no data either way for this long;
	// 0 never does.
	IdleTimeout time.Duration
}

// Start listens as opts say and serves sessions for sb in the background
// until Close.
func Start(opts Options, sb Sandboxes, log logrus.FieldLogger) (*Server, error) {
	tlsConfig, err := opts.tlsConfig()
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(opts.Address, fmt.Sprint(opts.Port)))
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	base := &url.URL{Scheme: "http", Host: lis.Addr().String()}
	if tlsConfig != nil {
		base.Scheme = "https"
		lis = tls.NewListener(lis, tlsConfig)
	}
	cfg := cristreaming.DefaultConfig
	cfg.Addr = lis.Addr().String()
	cfg.BaseURL = base
	cfg.StreamIdleTimeout = opts.IdleTimeout
	cfg.TLSConfig = tlsConfig // serving is ours (below); the library only reads it for the URL scheme
	srv, err := cristreaming.NewServer(cfg, &Runtime{sb: sb, log: log})
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	s := &Server{Server: srv, lis: lis, http: &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}, URL: base.String()}
	go func() {
		if err := s.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("streaming server stopped")
		}
	}()
	return s, nil
}

// tlsConfig loads the certificate and key, or returns nil without them.
func (o Options) tlsConfig() (*tls.Config, error) {
	if o.TLSCertFile == "" && o.TLSKeyFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("keys %q and %q: %w", "streaming.tls_cert_file", "streaming.tls_key_file", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// SPDY and WebSocket upgrade an HTTP/1.1 connection: no h2.
		NextProtos: []string{"http/1.1"},
	}
	if o.TLSClientCAFile != "" {
		pem, err := os.ReadFile(o.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", "streaming.tls_client_ca_file", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("key %q: %s holds no PEM certificate", "streaming.tls_client_ca_file", o.TLSClientCAFile)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Close stops the server and ends its sessions.
func (s *Server) Close() error { return s.http.Close() }

// Runtime runs streaming sessions (cristreaming.Runtime).
type Runtime struct {
	sb  Sandboxes
	log logrus.FieldLogger
}

var _ cristreaming.Runtime = (*Runtime)(nil)

// Exec runs cmd in a container with its stdio connected to the session's
// streams and returns once it has exited and its output is copied. A
// non-zero exit is an exec.ExitError, which the library sends to the
// client as the exit code.
func (r *Runtime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	p, err := r.sb.ExecStart(ctx, containerID, cmd, sandbox.ExecOptions{Stdin: in != nil, Tty: tty})
	if err != nil {
		return err
	}
	defer p.Close()

	var output sync.WaitGroup
	copyOut := func(dst io.Writer, src *os.File) {
		output.Add(1)
		go func() {
			defer output.Done()
			if dst == nil {
				dst = io.Discard
			}
			_, err := io.Copy(dst, src)
			if err != nil && !errors.Is(err, syscall.EIO) && !errors.Is(err, os.ErrClosed) {
				r.log.WithError(err).WithField("container", containerID).Debug("exec output copy")
			}
		}()
	}
	if tty {
		copyOut(out, p.Console)
		if in != nil {
			go func() { _, _ = io.Copy(p.Console, in) }()
		}
		if resize != nil {
			go resizeLoop(p.Console, resize)
		}
	} else {
		copyOut(out, p.Stdout)
		copyOut(errOut, p.Stderr)
		if in != nil {
			stdin := p.Stdin
			go func() {
				_, _ = io.Copy(stdin, in)
				// EOF from the client is EOF for the process.
				stdin.Close()
			}()
			p.Stdin = nil // closed by the goroutine
		}
	}

	code, err := p.Wait(ctx)
	if err != nil {
		return err
	}
	drained := make(chan struct{})
	go func() { output.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(outputDrainTimeout):
	}
	return exitError(cmd, code)
}

// exitError is nil for exit code 0, else the exec.ExitError the library
// needs to send the code to the client (it checks with a type assertion,
// so the error must not be wrapped).
func exitError(cmd []string, code int) error {
	if code == 0 {
		return nil
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with code %d", cmd, code), Code: code}
}

// resizeLoop applies each size from resize to the terminal until the
// channel closes.
func resizeLoop(console *os.File, resize <-chan remotecommand.TerminalSize) {
	for size := range resize {
		if size.Width == 0 || size.Height == 0 {
			continue
		}
		_ = unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
	}
}

// Attach connects the session's streams to a running container's stdio
// (see sandbox.AttachSession) and returns when the container's output
// ends (it exited), the session ends (its stdin closed, unless the
// container has stdin_once), or the client goes away. The container's
// terminal setting decides: with one, the client's resize events resize
// it and there is no separate stderr.
func (r *Runtime) Attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	s, err := r.sb.Attach(ctx, containerID, sandbox.AttachOptions{Stdin: in != nil, Stdout: out != nil, Stderr: errOut != nil})
	if err != nil {
		return err
	}
	defer s.Close()
	log := r.log.WithField("container", containerID)

	output := make(chan struct{}, 2)
	copyOut := func(dst io.Writer, src *os.File) {
		if dst == nil {
			dst = io.Discard
		}
		_, err := io.Copy(dst, src)
		if err != nil && !errors.Is(err, os.ErrClosed) {
			log.WithError(err).Debug("attach output copy")
		}
		output <- struct{}{}
	}
	streams := 1
	go copyOut(out, s.Stdout)
	if s.Stderr != nil {
		streams++
		go copyOut(errOut, s.Stderr)
	}
	if in != nil {
		stdin := s.Stdin
		s.Stdin = nil // closed by the goroutine
		go func() {
			_, _ = io.Copy(stdin, in)
			// EOF from the client ends the session's input.
			stdin.Close()
		}()
	}
	if s.Tty && resize != nil {
		go func() {
			for size := range resize {
				if size.Width == 0 || size.Height == 0 {
					continue
				}
				if err := s.Resize(ctx, size.Width, size.Height); err != nil {
					log.WithError(err).Debug("attach resize")
				}
			}
		}()
	}
	for range streams {
		select {
		case <-output:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// PortForward copies between stream and the port inside the pod's network
// namespace.
func (r *Runtime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	return r.sb.PortForward(ctx, podSandboxID, port, stream)
}
