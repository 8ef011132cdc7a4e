package service

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/stdio"
	"github.com/crib-runtime/crib/internal/shim/task"
)

// Exec runs a process in a running container and waits for it, keeping at
// most shimapi.MaxExecOutput bytes of each stream. With a timeout, the
// process is killed when it passes and the reply says TimedOut.
func (s *Shim) Exec(req *shimapi.ExecRequest, resp *shimapi.ExecResponse) error {
	lc, err := s.liveContainer(req.ID)
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		stdio.CloseFiles(outR, outW)
		return err
	}
	var stdout, stderr cappedBuffer
	var copiers sync.WaitGroup
	for dst, r := range map[*cappedBuffer]*os.File{&stdout: outR, &stderr: errR} {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			defer r.Close()
			_, _ = io.Copy(dst, r)
		}()
	}

	s.reaper.LockSpawn()
	p, err := lc.Run(req.Args, task.IO{Stdout: outW, Stderr: errW})
	if err == nil {
		s.reaper.Track(p.Pid())
	}
	s.reaper.UnlockSpawn()
	stdio.CloseFiles(outW, errW) // the process holds its own copies
	if err != nil {
		copiers.Wait()
		return fmt.Errorf("exec %q in container %s: %w", req.Args, req.ID, err)
	}
	pid := p.Pid()

	var timedOut bool
	var timer *time.Timer
	if req.Timeout > 0 {
		var mu sync.Mutex
		timer = time.AfterFunc(req.Timeout, func() {
			mu.Lock()
			timedOut = true
			mu.Unlock()
			_ = unix.Kill(pid, unix.SIGKILL)
		})
		defer func() { mu.Lock(); resp.TimedOut = timedOut; mu.Unlock() }()
	}
	code, werr := p.Wait()
	if timer != nil {
		timer.Stop()
	}
	s.reaper.Untrack(pid)
	// Children of the process may hold the pipes open: wait a little, then
	// answer with what arrived.
	done := make(chan struct{})
	go func() { copiers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(logDrainTimeout):
	}
	if werr != nil {
		return fmt.Errorf("wait for exec in container %s: %w", req.ID, werr)
	}
	resp.Stdout, resp.Stderr, resp.ExitCode = stdout.Bytes(), stderr.Bytes(), code
	return nil
}

// cappedBuffer keeps the first shimapi.MaxExecOutput bytes written to it
// and drops the rest, so a chatty exec cannot exhaust the shim's memory.
type cappedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := shimapi.MaxExecOutput - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// liveContainer returns container id's libcontainer handle if it has been
// created and not deleted. The exec itself runs without the op lock, so a
// long exec does not hold up Kill or Delete.
func (s *Shim) liveContainer(id string) (lc task.Container, err error) {
	err = s.withLive(id, func(c *container) error { lc = c.lc; return nil })
	return lc, err
}
