package harness

import (
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// killWait is how long Stop waits for a process after SIGKILL.
const killWait = 10 * time.Second

// Process is a daemon a test started (cribd, kubelet, containerd): its
// stdout and stderr go to a log file, and a goroutine waits for it, so a
// test can tell when it exits and whether it was asked to.
type Process struct {
	Name    string // in messages: "cribd", "kubelet", …
	LogPath string

	cmd       *exec.Cmd
	exited    chan struct{}
	err       error       // cmd.Wait's; set before exited closes
	signalled atomic.Bool // Signal (or Stop) was called: an exit is no crash
}

// StartProcess appends a header line to the log file at logPath (created
// if missing, so that restarts keep one log), starts cmd with its stdout
// and stderr appended to it, in a process group of its own (so that a
// signal a test sends reaches it alone and ^C on the test does not reach
// it before cleanup), and fails the test if it cannot start.
func StartProcess(t testing.TB, name string, cmd *exec.Cmd, logPath string) *Process {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	fmt.Fprintf(logf, "===== harness: starting %s at %s =====\n", name, time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	return p
}

// PID is the process's ID (also after it exited).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool { return !IsClosed(p.exited) }

// ExitErr is how the process exited (cmd.Wait's error); nil while it runs.
func (p *Process) ExitErr() error {
	if !IsClosed(p.exited) {
		return nil
	}
	return p.err
}

// Crashed reports whether the process exited without Signal or Stop
// having been called.
func (p *Process) Crashed() bool { return IsClosed(p.exited) && !p.signalled.Load() }

// Signal sends sig to the process and waits up to wait for it to exit; it
// reports whether the process is gone.
func (p *Process) Signal(sig syscall.Signal, wait time.Duration) bool {
	p.signalled.Store(true)
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return true
	case <-time.After(wait):
		return false
	}
}

// Stop sends SIGTERM and waits up to wait; if the process is still there
// it fails the test and kills it (SIGKILL, up to 10s more).
func (p *Process) Stop(t testing.TB, wait time.Duration) {
	t.Helper()
	if p.Signal(syscall.SIGTERM, wait) {
		return
	}
	t.Errorf("%s did not exit within %s of SIGTERM; killing it", p.Name, wait)
	if !p.Signal(syscall.SIGKILL, killWait) {
		t.Errorf("%s (pid %d) did not exit within %s of SIGKILL", p.Name, p.PID(), killWait)
	}
}

// WaitReady polls ready (as Eventually does) until it returns true, and
// fails the test with the end of the log if the process exits first.
func (p *Process) WaitReady(t testing.TB, timeout time.Duration, what string, ready func() (bool, string)) {
	t.Helper()
	Eventually(t, timeout, what, func() (bool, string) {
		if IsClosed(p.exited) {
			t.Fatalf("%s exited during start: %v\n%s", p.Name, p.err, p.LogTail(60))
		}
		return ready()
	})
}

// LogTail is the last n lines of the log file.
func (p *Process) LogTail(n int) string { return Tail(ReadFile(p.LogPath), n) }

// LogOnFailure logs the last n lines of the log file if the test failed.
func (p *Process) LogOnFailure(t testing.TB, n int) {
	t.Helper()
	if t.Failed() {
		t.Logf("%s log (%s, last %d lines):\n%s", p.Name, p.LogPath, n, p.LogTail(n))
	}
}
