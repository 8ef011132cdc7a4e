// Package stdio holds what crib-shim keeps of a container's stdio for the
// container's whole life: the output copied to the CRI log file (crilog.go)
// and fanned out to Attach sessions, the input Attach sessions feed, the
// terminal's master; and the descriptor plumbing of console sockets.
package stdio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// IO is what the shim keeps of a container's stdio for its whole
// life: the output streams, copied to the CRI log and fanned out to Attach
// sessions, and the input stream Attach sessions feed.
//
// Without a terminal the container writes to two pipes (stdout, stderr) and,
// with stdin, reads a third whose write end the shim holds. With a terminal
// the shim holds the master of the container's pseudo-terminal: its output
// is the container's only output stream (logged as stdout) and stdin is
// written to it.
type IO struct {
	id  string
	tty bool
	// out and errOut fan the output out to Attach sessions; errOut is nil
	// with a terminal.
	out, errOut *outputHub
	log         *criLog       // nil without a log path
	done        chan struct{} // closed once every output copier finished
	copiers     sync.WaitGroup

	hasStdin, stdinOnce bool

	mu      sync.Mutex
	console *os.File // the terminal's master (tty), closed by CloseAll
	stdin   *os.File // write end of the stdin pipe (no tty); nil once closed
	// stdinClosed: StdinOnce's session ended, or the container exited.
	stdinClosed bool
}

// Proc is what the container's init gets: files that go to the
// process (the shim closes its copies once the init started), or the
// console socket on which libcontainer sends the terminal's master.
type Proc struct {
	Stdin, Stdout, Stderr *os.File
	ConsoleChild          *os.File
	ConsoleParent         *os.File // the shim's end of the console socket
}

// Close closes the shim's copies of the process's ends.
func (p *Proc) Close() {
	CloseFiles(p.Stdin, p.Stdout, p.Stderr, p.ConsoleChild, p.ConsoleParent)
}

// New sets up a new container's stdio from req. It returns a nil IO when
// the container's output goes nowhere (no log, not attachable, no terminal,
// no stdin): the pause container. For a terminal, the output copier starts
// later, in StartConsole, once the master has arrived. On error nothing is left open.
func New(req *shimapi.CreateRequest) (_ *IO, _ *Proc, retErr error) {
	tty := req.Spec.Process.Terminal
	if req.LogPath == "" && !req.Attachable && !req.Stdin && !tty {
		return nil, &Proc{}, nil
	}
	cio := &IO{
		id: req.ID, tty: tty, hasStdin: req.Stdin, stdinOnce: req.Stdin && req.StdinOnce,
		out: newOutputHub(req.ID), done: make(chan struct{}),
	}
	pio := &Proc{}
	var ours []*os.File
	defer func() {
		if retErr != nil {
			pio.Close()
			CloseFiles(ours...)
			if cio.log != nil {
				cio.log.close()
			}
		}
	}()
	if req.LogPath != "" {
		f, err := openCRILog(req.LogDir, req.LogPath)
		if err != nil {
			return nil, nil, fmt.Errorf("open log: %w", err)
		}
		cio.log = newCRILog(f)
	}
	if tty {
		parent, child, err := SockPair()
		if err != nil {
			return nil, nil, err
		}
		pio.ConsoleParent, pio.ConsoleChild = parent, child
		return cio, pio, nil
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	ours, pio.Stdout = append(ours, outR), outW
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	ours, pio.Stderr = append(ours, errR), errW
	if req.Stdin {
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		pio.Stdin, cio.stdin = inR, inW
	}
	cio.errOut = newOutputHub(req.ID)
	cio.copy("stdout", outR, cio.out, false)
	cio.copy("stderr", errR, cio.errOut, false)
	cio.finishWhenCopied()
	return cio, pio, nil
}

// StartConsole takes the terminal's master and starts copying its output.
func (c *IO) StartConsole(master *os.File) {
	c.mu.Lock()
	c.console = master
	c.mu.Unlock()
	c.copy("stdout", eioIsEOF{master}, c.out, true)
	c.finishWhenCopied()
}

// Tty reports whether the container has a terminal.
func (c *IO) Tty() bool { return c.tty }

// Done is closed once the container's output is copied to its end (or
// Abort gave up on it).
func (c *IO) Done() <-chan struct{} { return c.done }

// HasLog reports whether the container's output goes to a CRI log file.
func (c *IO) HasLog() bool { return c.log != nil }

// ReopenLog switches the CRI log to a freshly opened file at path, beneath
// the pod's log directory dir (kubelet renamed the old one to rotate it).
func (c *IO) ReopenLog(dir, path string) error { return c.log.reopen(dir, path) }

// copy copies one output stream to the log and the hub until EOF, then
// closes the hub (ending the attached sessions' stream).
func (c *IO) copy(stream string, r io.Reader, hub *outputHub, tty bool) {
	c.copiers.Add(1)
	go func() {
		defer c.copiers.Done()
		defer hub.close()
		if cl, ok := r.(io.Closer); ok {
			defer cl.Close()
		}
		tee := io.TeeReader(r, hub)
		var err error
		if c.log != nil {
			err = c.log.copyStream(stream, tee, tty)
		} else {
			_, err = io.Copy(io.Discard, tee)
		}
		if err != nil && !errors.Is(err, os.ErrClosed) {
			logrus.WithError(err).WithField("id", c.id).Warnf("copy container %s", stream)
		}
	}()
}

// finishWhenCopied closes the log and done once the copiers finished.
func (c *IO) finishWhenCopied() {
	go func() {
		c.copiers.Wait()
		if c.log != nil {
			c.log.close()
		}
		close(c.done)
	}()
}

// Abort closes what New and StartConsole opened when the container could
// not be created.
func (c *IO) Abort() {
	c.CloseAll()
	if c.tty && c.console == nil {
		// No copier ever started: close the log and finish here.
		if c.log != nil {
			c.log.close()
		}
		close(c.done)
	}
}

// CloseAll closes the container's input and the terminal once the
// container has exited (its output is drained or given up on).
func (c *IO) CloseAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stdinClosed = true
	CloseFiles(c.stdin, c.console)
	c.stdin = nil
}

// closeStdin ends the container's input for StdinOnce: EOF on the pipe, or
// the terminal's EOF character (what ^D sends) on a terminal.
func (c *IO) closeStdin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stdinClosed {
		return
	}
	c.stdinClosed = true
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
		return
	}
	if c.console != nil {
		eof := byte(4) // ^D, the default VEOF
		_ = control(c.console, func(fd int) error {
			t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
			if err == nil {
				eof = t.Cc[unix.VEOF]
			}
			return err
		})
		if _, err := c.console.Write([]byte{eof}); err != nil {
			logrus.WithError(err).WithField("id", c.id).Warn("send EOF to terminal")
		}
	}
}

// input returns where stdin goes now, or nil once it is closed.
func (c *IO) input() io.Writer {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stdinClosed:
		return nil
	case c.stdin != nil:
		return c.stdin
	case c.console != nil:
		return c.console
	}
	return nil
}

// Resize sets the terminal's size.
func (c *IO) Resize(width, height uint16) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.console == nil {
		return fmt.Errorf("container %s has no terminal: %w", c.id, errdefs.ErrFailedPrecondition)
	}
	ws := &unix.Winsize{Col: width, Row: height}
	if err := control(c.console, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) }); err != nil {
		return fmt.Errorf("resize terminal of container %s: %w", c.id, err)
	}
	return nil
}

// Attach starts an Attach session and returns its descriptors in the order
// shimapi.AttachResponse gives.
func (c *IO) Attach(req *shimapi.AttachRequest) (_ []*os.File, retErr error) {
	switch {
	case req.Stdin && !c.hasStdin:
		return nil, fmt.Errorf("container %s was not created with stdin: cannot attach to its stdin: %w", c.id, errdefs.ErrFailedPrecondition)
	case req.Stderr && c.tty:
		return nil, fmt.Errorf("container %s has a terminal, which has no separate stderr: %w", c.id, errdefs.ErrInvalidArgument)
	}
	var ours, theirs []*os.File
	defer func() {
		if retErr != nil {
			CloseFiles(ours...)
			CloseFiles(theirs...)
		}
	}()
	var inR *os.File
	if req.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		inR, ours, theirs = r, append(ours, r), append(theirs, w)
	}
	var subs []*attachOut
	for _, s := range []struct {
		want bool
		hub  *outputHub
	}{{req.Stdout, c.out}, {req.Stderr, c.errOut}} {
		if !s.want {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			for _, sub := range subs {
				sub.hub.remove(sub)
			}
			return nil, err
		}
		theirs = append(theirs, r)
		// The hub owns w from here (closes it at the stream's end).
		subs = append(subs, s.hub.add(w))
	}
	if inR != nil {
		go c.feedStdin(inR, subs)
	}
	return theirs, nil
}

// feedStdin copies one session's input to the container until the session
// closes it. Then, with StdinOnce, the container's stdin is closed and the
// session keeps the output until the container exits; otherwise the
// session's output streams end, which ends the session.
func (c *IO) feedStdin(r *os.File, subs []*attachOut) {
	defer r.Close()
	if w := c.input(); w != nil {
		if _, err := io.Copy(w, r); err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.EIO) {
			logrus.WithError(err).WithField("id", c.id).Debug("copy attach stdin")
		}
	} else {
		_, _ = io.Copy(io.Discard, r) // stdin closed already: wait for the session's end
	}
	if c.stdinOnce {
		c.closeStdin()
		return
	}
	for _, sub := range subs {
		sub.hub.remove(sub)
	}
}

// RecvConsole receives a terminal's master from libcontainer's console
// socket, non-blocking so that reads wait in the Go poller, not on a thread
// of their own.
func RecvConsole(sock *os.File) (*os.File, error) {
	fd, err := recvFD(sock)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("terminal master: %w", err)
	}
	return os.NewFile(uintptr(fd), "console"), nil
}

// control runs f on f's descriptor without making it blocking (as Fd
// would).
func control(file *os.File, f func(fd int) error) error {
	rc, err := file.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// eioIsEOF reads a terminal's master, on which the end of the output (the
// last process holding the terminal is gone) reads as EIO.
type eioIsEOF struct{ f *os.File }

func (e eioIsEOF) Read(p []byte) (int, error) {
	n, err := e.f.Read(p)
	if errors.Is(err, syscall.EIO) {
		err = io.EOF
	}
	return n, err
}

func (e eioIsEOF) Close() error { return nil } // CloseAll closes the master

// outputHub fans one output stream out to the Attach sessions reading it.
// Writes never block: each session has a queue drained by a goroutine of
// its own, and a session more than shimapi.MaxAttachBacklog bytes behind
// is cut off.
type outputHub struct {
	id     string // the container's, for logging
	mu     sync.Mutex
	subs   map[*attachOut]struct{}
	closed bool
}

func newOutputHub(id string) *outputHub {
	return &outputHub{id: id, subs: make(map[*attachOut]struct{})}
}

// Write queues a copy of p for every session; it never fails.
func (h *outputHub) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		if !sub.queue(p) {
			logrus.WithFields(logrus.Fields{"id": h.id, "backlog": sub.backlog()}).Warn("attach session too slow for the container's output: cutting it off")
			h.removeLocked(sub)
		}
	}
	return len(p), nil
}

// add makes w a session's stream. The hub closes w when the stream ends
// (at once if it has ended).
func (h *outputHub) add(w *os.File) *attachOut {
	sub := &attachOut{hub: h, w: w, ch: make(chan []byte, 256)}
	go sub.run()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
		return sub
	}
	h.subs[sub] = struct{}{}
	return sub
}

// remove ends sub's stream (after what is queued).
func (h *outputHub) remove(sub *attachOut) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(sub)
}

func (h *outputHub) removeLocked(sub *attachOut) {
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// close ends every session's stream: the container's stream ended.
func (h *outputHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		h.removeLocked(sub)
	}
}

// attachOut is one session's output stream.
type attachOut struct {
	hub     *outputHub
	w       *os.File
	ch      chan []byte // closed by the hub, under its lock
	mu      sync.Mutex  // guards pending and gone
	pending int         // bytes queued and not yet written
	gone    bool        // the reader went away
}

// queue queues a copy of p; false if the session is too far behind or
// its reader went away. Called under hub.mu.
func (s *attachOut) queue(p []byte) bool {
	s.mu.Lock()
	if s.gone || s.pending+len(p) > shimapi.MaxAttachBacklog {
		s.mu.Unlock()
		return false
	}
	s.pending += len(p)
	s.mu.Unlock()
	select {
	case s.ch <- append([]byte(nil), p...):
		return true
	default:
		return false
	}
}

func (s *attachOut) backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// run writes the queue to the session until the hub closes it, then
// closes the session's pipe.
func (s *attachOut) run() {
	defer s.w.Close()
	for b := range s.ch {
		s.mu.Lock()
		s.pending -= len(b)
		gone := s.gone
		s.mu.Unlock()
		if gone {
			continue
		}
		if _, err := s.w.Write(b); err != nil {
			// EPIPE: cribd closed its end. The hub drops us at its
			// next write.
			s.mu.Lock()
			s.gone = true
			s.mu.Unlock()
		}
	}
}
