package main

import (
	"os"
	"os/signal"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/procfs"
)

// reaper reaps the orphans that the kernel hands to crib-shim as a child
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
//     and Destroy, which may run hooks) holds spawnMu; the reaper scans only
//     while holding spawnMu, so it never sees those intermediate processes.
//   - A container's init PID is tracked from the moment Start returns (still
//     under spawnMu) until its waiter has reaped it.
type reaper struct {
	spawnMu sync.Mutex

	mu      sync.Mutex
	tracked map[int]struct{}
}

func newReaper() *reaper {
	return &reaper{tracked: make(map[int]struct{})}
}

// lockSpawn keeps the reaper away while the caller forks and waits for its
// own children.
func (r *reaper) lockSpawn()   { r.spawnMu.Lock() }
func (r *reaper) unlockSpawn() { r.spawnMu.Unlock() }

// track marks pid as waited for by someone else.
func (r *reaper) track(pid int) {
	r.mu.Lock()
	r.tracked[pid] = struct{}{}
	r.mu.Unlock()
}

// untrack is called once pid has been reaped by its waiter.
func (r *reaper) untrack(pid int) {
	r.mu.Lock()
	delete(r.tracked, pid)
	r.mu.Unlock()
}

func (r *reaper) isTracked(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.tracked[pid]
	return ok
}

// run reaps orphans on every SIGCHLD until stop is closed.
func (r *reaper) run(stop <-chan struct{}) {
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
func (r *reaper) reapOrphans() {
	r.lockSpawn()
	defer r.unlockSpawn()
	pids, err := childPids()
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
		logrus.WithFields(logrus.Fields{"pid": pid, "status": exitCode(ws)}).Debug("reaped orphan")
	}
}

// exitCode maps a wait status to a shell-style exit code: the exit status, or
// 128+signal for a process killed by a signal.
func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	default:
		return 255
	}
}
