package service

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/stdio"
	"github.com/crib-runtime/crib/internal/shim/task"
)

// streamExec is a process ExecStart started: its exit code arrives on done
// once the shim has reaped it.
type streamExec struct {
	done chan struct{}
	code int
	err  error
}

// execTable holds the processes ExecStart started until ExecWait collects
// them. A process whose waiter never comes (cribd died) keeps its small
// entry until the shim exits.
type execTable struct {
	mu    sync.Mutex
	procs map[int]*streamExec
}

func (t *execTable) add(pid int, e *streamExec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.procs == nil {
		t.procs = make(map[int]*streamExec)
	}
	t.procs[pid] = e
}

func (t *execTable) get(pid int) *streamExec {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.procs[pid]
}

func (t *execTable) remove(pid int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.procs, pid)
}

// ExecStart starts a process in a running container with pipes or a
// pseudo-terminal as its stdio, and hands the caller's ends over in the
// reply (see shimapi.ExecStartResponse). The shim reaps the process; the
// caller collects the exit code with ExecWait.
func (s *Shim) ExecStart(req *shimapi.ExecStartRequest, resp *shimapi.ExecStartResponse) (retErr error) {
	if len(req.Args) == 0 {
		return fmt.Errorf("exec in container %s: no command: %w", req.ID, errdefs.ErrInvalidArgument)
	}
	lc, err := s.liveContainer(req.ID)
	if err != nil {
		return err
	}

	// ours are handed to the caller, theirs to the process; the shim
	// closes its copies of both once the process has started.
	var ours, theirs []*os.File
	defer func() {
		stdio.CloseFiles(theirs...)
		if retErr != nil {
			stdio.CloseFiles(ours...)
		}
	}()
	var procIO task.IO
	var consoleParent *os.File
	if req.Tty {
		parent, child, err := stdio.SockPair()
		if err != nil {
			return err
		}
		defer parent.Close()
		consoleParent = parent
		theirs = append(theirs, child)
		procIO = task.IO{ConsoleSocket: child, Width: req.Width, Height: req.Height}
	} else {
		pipe := func(procReads bool) (*os.File, error) {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			if procReads {
				ours, theirs = append(ours, w), append(theirs, r)
				return r, nil
			}
			ours, theirs = append(ours, r), append(theirs, w)
			return w, nil
		}
		var err error
		if procIO.Stdout, err = pipe(false); err != nil {
			return err
		}
		if procIO.Stderr, err = pipe(false); err != nil {
			return err
		}
		if req.Stdin {
			if procIO.Stdin, err = pipe(true); err != nil {
				return err
			}
		}
	}

	s.reaper.LockSpawn()
	p, err := lc.Run(req.Args, procIO)
	if err == nil {
		s.reaper.Track(p.Pid())
	}
	s.reaper.UnlockSpawn()
	if err != nil {
		return fmt.Errorf("exec %q in container %s: %w", req.Args, req.ID, err)
	}
	pid := p.Pid()
	if consoleParent != nil {
		// libcontainer sent the terminal's master while starting the
		// process; it waits in the socket's buffer.
		master, err := stdio.RecvFile(consoleParent)
		if err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = p.Wait()
			s.reaper.Untrack(pid)
			return fmt.Errorf("exec in container %s: receive terminal: %w", req.ID, err)
		}
		ours = append(ours, master)
	}
	resp.Files = ours
	e := &streamExec{done: make(chan struct{})}
	s.execs.add(pid, e)
	go func() {
		e.code, e.err = p.Wait()
		s.reaper.Untrack(pid)
		close(e.done)
	}()
	resp.Pid = pid
	return nil
}

// ExecWait waits for a process ExecStart started and returns its exit code.
func (s *Shim) ExecWait(req *shimapi.ExecWaitRequest, resp *shimapi.ExecWaitResponse) error {
	e := s.execs.get(req.Pid)
	if e == nil {
		return fmt.Errorf("exec process %d in container %s: %w", req.Pid, req.ID, errdefs.ErrNotFound)
	}
	<-e.done
	s.execs.remove(req.Pid)
	if e.err != nil {
		return fmt.Errorf("wait for exec in container %s: %w", req.ID, e.err)
	}
	resp.ExitCode = e.code
	return nil
}
