package harness

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recordTB is a testing.TB whose Errorf, Fatalf and Logf are recorded
// instead of failing the test; Fatalf ends the goroutine as t.Fatalf does.
type recordTB struct {
	testing.TB
	mu     sync.Mutex
	errs   []string
	fatals []string
	logs   []string
}

func (r *recordTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recordTB) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recordTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)+len(r.fatals) > 0
}

// inGoroutine runs f on its own goroutine, as a test does, so that a
// recorded Fatalf ends f alone.
func inGoroutine(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

// waitExit waits for p to exit, failing the test after 10s.
func waitExit(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s (pid %d) still running after 10s", p.Name, p.PID())
	}
}

func TestProcessStopAndRestartShareTheLog(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "p.log")
	for i, want := range []string{"first", "second"} {
		p := StartProcess(t, "sleeper", exec.Command("sh", "-c", "echo "+want+"; exec sleep 600"), logPath)
		p.WaitReady(t, 10*time.Second, "echo in the log", func() (bool, string) {
			return strings.Contains(p.LogTail(1), want), p.LogTail(5)
		})
		if !p.Running() || p.ExitErr() != nil {
			t.Fatalf("start %d: Running %v, ExitErr %v; want running", i, p.Running(), p.ExitErr())
		}
		if pgid, err := syscall.Getpgid(p.PID()); err != nil || pgid != p.PID() {
			t.Errorf("start %d: process group %d (%v), want its own (%d)", i, pgid, err, p.PID())
		}
		rec := &recordTB{TB: t}
		p.Stop(rec, 10*time.Second)
		if len(rec.errs) > 0 {
			t.Errorf("start %d: Stop: %v", i, rec.errs)
		}
		if p.Running() || p.Crashed() {
			t.Errorf("start %d: after Stop: Running %v, Crashed %v; want neither", i, p.Running(), p.Crashed())
		}
		var exitErr *exec.ExitError
		if !errors.As(p.ExitErr(), &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("start %d: ExitErr %v, want killed by SIGTERM", i, p.ExitErr())
		}
	}
	log := ReadFile(logPath)
	if strings.Count(log, "===== harness: starting sleeper at ") != 2 || !strings.Contains(log, "first\n") || !strings.Contains(log, "second\n") {
		t.Errorf("log of two starts:\n%s\nwant both headers and both outputs", log)
	}
}

func TestProcessExitOnItsOwnIsACrash(t *testing.T) {
	p := StartProcess(t, "quitter", exec.Command("sh", "-c", "echo bye; exit 3"), filepath.Join(t.TempDir(), "p.log"))
	waitExit(t, p)
	if !p.Crashed() {
		t.Error("Crashed() = false for a process that exited by itself")
	}
	var exitErr *exec.ExitError
	if !errors.As(p.ExitErr(), &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("ExitErr = %v, want exit status 3", p.ExitErr())
	}
	// Signalling it afterwards finds it gone.
	if !p.Signal(syscall.SIGTERM, time.Second) {
		t.Error("Signal on an exited process reported it still there")
	}
}

func TestProcessStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	// The ignored SIGTERM survives the exec into sleep.
	p := StartProcess(t, "stubborn", exec.Command("sh", "-c", `trap "" TERM; echo ready; exec sleep 600`), filepath.Join(t.TempDir(), "p.log"))
	p.WaitReady(t, 10*time.Second, "ready in the log", func() (bool, string) {
		return strings.Contains(p.LogTail(1), "ready"), p.LogTail(5)
	})
	rec := &recordTB{TB: t}
	p.Stop(rec, 300*time.Millisecond)
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "stubborn did not exit within 300ms of SIGTERM; killing it") {
		t.Errorf("Stop's errors = %q, want one saying it killed stubborn", rec.errs)
	}
	if p.Running() || p.Crashed() {
		t.Errorf("after Stop: Running %v, Crashed %v; want neither", p.Running(), p.Crashed())
	}
	var exitErr *exec.ExitError
	if !errors.As(p.ExitErr(), &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("ExitErr %v, want killed by SIGKILL", p.ExitErr())
	}
}

func TestProcessWaitReadyFailsWhenItExits(t *testing.T) {
	p := StartProcess(t, "quitter", exec.Command("sh", "-c", "echo last words; exit 1"), filepath.Join(t.TempDir(), "p.log"))
	rec := &recordTB{TB: t}
	inGoroutine(func() {
		p.WaitReady(rec, 30*time.Second, "never ready", func() (bool, string) { return false, "not yet" })
	})
	if len(rec.fatals) != 1 || !strings.Contains(rec.fatals[0], "quitter exited during start: exit status 1") ||
		!strings.Contains(rec.fatals[0], "last words") {
		t.Errorf("WaitReady's fatal errors = %q, want one naming the exit and the log's end", rec.fatals)
	}

	// The recorder has failed now: LogOnFailure logs the log's end.
	p.LogOnFailure(rec, 3)
	if len(rec.logs) != 1 || !strings.Contains(rec.logs[0], "quitter log ("+p.LogPath+", last 3 lines):") || !strings.Contains(rec.logs[0], "last words") {
		t.Errorf("LogOnFailure logged %q, want the log's last lines", rec.logs)
	}
}

func TestStartProcessFailsForAMissingBinary(t *testing.T) {
	rec := &recordTB{TB: t}
	inGoroutine(func() {
		StartProcess(rec, "ghost", exec.Command(filepath.Join(t.TempDir(), "no-such-binary")), filepath.Join(t.TempDir(), "p.log"))
		rec.TB.Error("StartProcess returned for a missing binary")
	})
	if len(rec.fatals) != 1 || !strings.Contains(rec.fatals[0], "start ghost: ") {
		t.Errorf("fatal errors = %q, want one about starting ghost", rec.fatals)
	}
}
