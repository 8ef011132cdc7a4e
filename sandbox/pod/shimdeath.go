package pod

// A pod's crib-shim is the parent of its processes, the only reader of its
// containers' output pipes (or terminal masters) and the only one who can
// wait(2) for their exits. When it dies (kill -9, a crash, an OOM kill),
// its orphans go to PID 1, their output has no reader (their next write
// gets SIGPIPE, or EIO with a terminal), and their exit codes are lost: a
// new shim could find them again (libcontainer can load a container from
// its state) but could not log what they write nor tell how they ended.
// So cribd does not adopt them: it reports every container that had not
// exited as EXITED with code 255 and reason ShimDied, kills what is left
// of the pod (so that what it reports is true), and the pod reads
// NOTREADY; kubelet then stops it and makes a new one. Stop and Remove
// finish through the paths that work without a shim.
//
// cribd learns of the death within milliseconds through a pidfd of the
// shim (readable when it exits, whether or not cribd is its parent), and
// at start for a shim that died while cribd was down.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/cleanup"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// shimWatch is a pidfd of a pod's shim, polled by one goroutine.
type shimWatch struct {
	pid  int
	file *os.File
}

// openPidfd returns a pidfd of pid that Go's poller watches.
func openPidfd(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid)), nil
}

// waitPidfd blocks until the process of pidfd f exits (true) or f is
// closed (false). A pidfd reads as readable once its process exited; the
// poller wakes the wait then, so no thread is held per shim.
func waitPidfd(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	exited := false
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		exited = err == nil && n > 0
		return exited || (err != nil && !errors.Is(err, unix.EINTR))
	})
	return err == nil && exited
}

// watchShim starts watching the shim of ready pod p; when it exits while
// the pod is ready, shimDied runs. It returns false if no shim serves the
// pod's run directory now. The caller holds p.mu (or p is not yet shared).
func (m *Pods) watchShim(p *pod) bool {
	m.unwatchShim(p)
	pid := shimclient.PID(p.rec.ShimDir)
	if pid == 0 {
		return false
	}
	f, err := openPidfd(pid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false
		}
		// Without a pidfd (a kernel before 5.3) the death is still found
		// by the next call that needs the shim and at cribd's start.
		m.opts.Log.WithField("pod", p.rec.ID).WithError(err).Warn("cannot watch the pod's shim")
		return true
	}
	// The PID may have been reused between reading it and opening the
	// pidfd: check again that it names the shim, now that the pidfd pins
	// whatever it names.
	if shimclient.PID(p.rec.ShimDir) != pid {
		f.Close()
		return false
	}
	w := &shimWatch{pid: pid, file: f}
	p.watch = w
	go func() {
		if waitPidfd(f) {
			m.onShimExit(p, w)
		}
	}()
	return true
}

// unwatchShim stops watching p's shim: before cribd itself shuts it down.
// The caller holds p.mu.
func (m *Pods) unwatchShim(p *pod) {
	if p.watch != nil {
		p.watch.file.Close()
		p.watch = nil
	}
}

// onShimExit handles the exit of the shim w watched.
func (m *Pods) onShimExit(p *pod, w *shimWatch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watch != w {
		return // unwatched meanwhile: cribd stopped the shim itself
	}
	m.unwatchShim(p)
	if p.rec.Phase != state.PhaseReady || p.rec.ShimDied != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanup.Timeout)
	defer cancel()
	m.shimDied(ctx, p, fmt.Sprintf("crib-shim (pid %d) of pod %s exited while the pod was ready", w.pid, p.rec.ID))
}

// shimDied records that p's shim is gone and acts on it, in an order a
// crash between any two steps leaves for the next cribd to finish (it
// calls shimDied again at start for a ready pod whose shim is gone):
// the pod's record first (NOTREADY from then on), then each container's
// final state (EXITED 255, ShimDied), then the kill of every process left
// in the pod's cgroups, then the events. The caller holds p.mu.
func (m *Pods) shimDied(ctx context.Context, p *pod, why string) {
	log := m.opts.Log.WithField("pod", p.rec.ID)
	now := time.Now()
	if p.rec.ShimDied == nil {
		// 255 and ShimDied are the containers' side's exit code and
		// reason (container.ShimDiedReason), kept in the message as
		// before the split.
		log.Warnf("%s: reporting the pod NOTREADY and its containers exited (255, ShimDied), killing what is left of it", why)
		rec := p.rec
		rec.ShimDied = &now
		if err := m.save(&rec); err != nil {
			// The pod still reads NOTREADY, since the shim stays dead;
			// the next start finds it the same way.
			log.WithError(err).Error("saving the pod record after its shim died")
		}
		p.setRec(rec)
	}
	if p.shim != nil {
		p.shim.Close()
		p.shim = nil
	}
	// The containers first (their records, then their processes), then
	// the pause process, then the events.
	stopped := m.ctrs.ShimDied(ctx, m.locked(p), why, now)
	if err := procfs.Kill(p.rec.PausePID, p.rec.PauseStartTime); err != nil {
		log.WithError(err).Warn("killing a process of the pod")
	}
	if err := cgroup.Kill(ctx, m.hierarchies, p.rec.CgroupsPath); err != nil {
		log.WithError(err).Warn("killing the processes left in a cgroup of the pod")
	}
	for _, id := range stopped {
		m.hub.Publish(events.Stopped, id, p.rec.ID)
	}
	m.hub.PublishPod(events.Stopped, p.rec.ID)
}

// RecoverShims runs at start, before cribd serves: it watches the shim of
// every ready pod, and finishes the work of shimDied for a pod whose shim
// died while cribd was down (or whose death a killed cribd was handling).
// A pod whose run directory is gone lost its shim to a reboot with
// everything else: it reads NOTREADY already and is left as it is.
func (m *Pods) RecoverShims() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanup.Timeout)
	defer cancel()
	for _, p := range m.pods.List() {
		p.mu.Lock()
		switch {
		case p.rec.Phase != state.PhaseReady:
		case p.rec.ShimDied != nil:
			m.shimDied(ctx, p, "crib-shim of pod "+p.rec.ID+" died")
		case m.watchShim(p):
		case dirExists(p.rec.ShimDir):
			m.shimDied(ctx, p, fmt.Sprintf("crib-shim of pod %s is gone (found at cribd start)", p.rec.ID))
		}
		p.mu.Unlock()
	}
}

func dirExists(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.IsDir()
}
