// Package reaper reaps the orphans that the kernel hands to crib-shim as a
// child subreaper, without stealing the exit status of the children that
// the shim or libcontainer wait for themselves.
package reaper

import (
	"os"
	"os/signal"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/procfs"
)

// Reaper reaps the orphans that the kernel hands to crib-shim as a child
// subreaper (processes of host-PID containers whose parent died, setns'd
// helpers, ...), without stealing the exit status of the children that
// crib-shim or libcontainer wait for themselves.
//
// Why not wait4(-1, WNOHANG): it reaps whichever child is a zombie, including
// a container's init (whose status a Process.Wait goroutine needs) and the
// short-lived "runc init" stages that libcontainer waits for during Start.
// Instead, on SIGCHLD the reaper lists the shim's children from
// /proc/self/task/*/children and calls wait4(pid, WNOHANG) only on those that
// are zombies and not tracked. Two rules keep this safe:
//
//   - Code that forks children that libcontainer waits for (container start,
//     and Destroy, which may run hooks) holds the spawn lock (LockSpawn); the
//     reaper scans only while holding it, so it never sees those
//     intermediate processes.
//   - A container's init PID is tracked from the moment Start returns (still
//     under the spawn lock) until its waiter has reaped it.
type Reaper struct {
	spawnMu sync.Mutex

	mu      sync.Mutex
	tracked map[int]struct{}
}

// New returns a Reaper that tracks no process; Run starts its work.
func New() *Reaper {
	return &Reaper{tracked: make(map[int]struct{})}
}

// LockSpawn keeps the reaper away while the caller forks and waits for its
// own children; UnlockSpawn lets it back.
func (r *Reaper) LockSpawn() { r.spawnMu.Lock() }

// UnlockSpawn ends what LockSpawn began.
func (r *Reaper) UnlockSpawn() { r.spawnMu.Unlock() }

// Track marks pid as waited for by someone else.
func (r *Reaper) Track(pid int) {
	r.mu.Lock()
	r.tracked[pid] = struct{}{}
	r.mu.Unlock()
}

// Untrack is called once pid has been reaped by its waiter.
func (r *Reaper) Untrack(pid int) {
	r.mu.Lock()
	delete(r.tracked, pid)
	r.mu.Unlock()
}

func (r *Reaper) isTracked(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.tracked[pid]
	return ok
}

// Run reaps orphans on every SIGCHLD until stop is closed.
func (r *Reaper) Run(stop <-chan struct{}) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD)
	defer signal.Stop(sigs)
	for {
		select {
		case <-stop:
			return
		case <-sigs:
			r.reapOrphans()
		}
	}
}

// reapOrphans reaps every untracked zombie child.
func (r *Reaper) reapOrphans() {
	r.LockSpawn()
	defer r.UnlockSpawn()
	pids, err := procfs.SelfChildren()
	if err != nil {
		logrus.WithError(err).Warn("reaper: list children")
		return
	}
	for _, pid := range pids {
		if r.isTracked(pid) {
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err != nil || st.State != 'Z' {
			continue
		}
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err != nil || got != pid {
			continue
		}
		logrus.WithFields(logrus.Fields{"pid": pid, "status": ExitCode(ws)}).Debug("reaped orphan")
	}
}

// ExitCode maps a wait status to a shell-style exit code: the exit status,
// or 128+signal for a process killed by a signal.
func ExitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	default:
		return 255
	}
}
