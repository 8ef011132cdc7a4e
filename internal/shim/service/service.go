// Package service is crib-shim's "Shim" RPC service (api/shim): the pod's
// containers and their state machine, exec and attach, log reopening and
// resource updates, and the state files cribd reads. It runs containers
// through internal/shim/task's Container (libcontainer in-process through
// internal/shim/libct by default), keeps stdio through
// internal/shim/stdio and serves through internal/shim/rpc.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/cgroups/fscommon"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/cleanup"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/internal/shim/libct"
	"github.com/crib-runtime/crib/internal/shim/ocicli"
	"github.com/crib-runtime/crib/internal/shim/reaper"
	"github.com/crib-runtime/crib/internal/shim/stdio"
	"github.com/crib-runtime/crib/internal/shim/task"
)

// Errors crossing the RPC boundary are plain strings. A message that ends in
// ": <sentinel>" (e.g. "container x: not found") is mapped back to the
// errdefs sentinel by the cribd-side client.

const (
	// killTimeout bounds how long Delete waits for a SIGKILLed init.
	killTimeout = 10 * time.Second
	// logDrainTimeout bounds how long an exit waits for the container's
	// output to reach the log file (a process that escaped the container's
	// PID namespace may hold the pipe open forever).
	logDrainTimeout = 2 * time.Second
)

// Shim is the RPC service "Shim" (see api/shim). Each method is safe for
// concurrent use; operations on one container are serialised by its op lock.
//
// A container goes through these states (derived from its timestamps):
//
//	(Create) ──> created ──(Start)──> running ──(exit)──> stopped ──(Delete)──> gone
//	               └───────────(exit, e.g. Kill)────────────┘
//
// Delete works in every state: it SIGKILLs a live init and waits for it.
type Shim struct {
	dir     string // pod run directory
	lcRoot  string // libcontainer state root
	reaper  *reaper.Reaper
	cgroups *cgroupDirs

	mu         sync.Mutex
	containers map[string]*container
	shutdown   bool // set by Shutdown: no more Creates

	execs execTable // streaming exec processes awaiting ExecWait

	exitOnce sync.Once
	exit     chan struct{} // closed when the process should exit
}

// container is one container of the pod.
type container struct {
	id     string
	dir    string // <shim dir>/containers/<id>, holds state.json
	cgPath string

	// op serialises Create, Start, Kill and Delete on this container.
	op      sync.Mutex
	lc      task.Container // set by Create, under op
	deleted bool           // under op: Create failed or Delete finished

	exited  chan struct{}     // closed once init is reaped and the exit recorded
	oom     atomic.Bool       // an OOM event was seen in the container's cgroup (cgroup v1)
	oomV2   *cgroup.OOMWatch  // the container's cgroup v2 watch, if any
	oomBase uint64            // the pod cgroup's oom_kill count when oomV2 began
	cgPaths map[string]string // cgroup directories (see shimapi.State.CgroupPaths)
	io      *stdio.IO         // the container's stdio; nil if it goes nowhere
	logDir  string            // the pod's log directory, beneath which logPath is opened
	logPath string

	mu    sync.Mutex
	state shimapi.State // Status is derived in snapshot
}

// lcRootName is the folder of the run directory that holds libcontainer's
// state (the shim's alone: cribd never reads it).
const lcRootName = "libcontainer"

// New returns the service of the pod run directory dir, making its folders.
// r is the shim's reaper: the service holds its spawn lock around the
// forks libcontainer waits for itself and tracks the inits and execs it
// reaps (the caller runs it).
func New(dir string, r *reaper.Reaper) (*Shim, error) {
	cg, err := newCgroupDirs()
	if err != nil {
		return nil, err
	}
	s := &Shim{
		dir:        dir,
		lcRoot:     filepath.Join(dir, lcRootName),
		reaper:     r,
		cgroups:    cg,
		containers: make(map[string]*container),
		exit:       make(chan struct{}),
	}
	for _, d := range []string{s.lcRoot, filepath.Join(dir, shimapi.ContainersName)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// RequestExit asks the shim to exit (see Exit); it may be called many times.
func (s *Shim) RequestExit() { s.exitOnce.Do(func() { close(s.exit) }) }

// Exit is closed when the shim should exit: a signal came (RequestExit) or
// Shutdown succeeded and its reply is written.
func (s *Shim) Exit() <-chan struct{} { return s.exit }

func (s *Shim) get(id string) *container {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.containers[id]
}

// notFound is the error for a container the shim does not have.
func notFound(id string) error {
	return fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
}

// withOp runs fn on container id under its op lock, whether or not the
// container was deleted while the caller waited for the lock. An unknown
// id is ErrNotFound.
func (s *Shim) withOp(id string, fn func(*container) error) error {
	c := s.get(id)
	if c == nil {
		return notFound(id)
	}
	c.op.Lock()
	defer c.op.Unlock()
	return fn(c)
}

// withContainer runs fn on container id under its op lock. An unknown
// container, or one deleted (or whose Create failed) while the caller
// waited for the lock, is ErrNotFound.
func (s *Shim) withContainer(id string, fn func(*container) error) error {
	return s.withOp(id, func(c *container) error {
		if c.deleted {
			return notFound(id)
		}
		return fn(c)
	})
}

// withLive is withContainer for calls that need the container's processes
// (exec, update): a container libcontainer does not hold, deleted or never
// created, is "not running": ErrFailedPrecondition.
func (s *Shim) withLive(id string, fn func(*container) error) error {
	return s.withOp(id, func(c *container) error {
		if c.lc == nil || c.deleted {
			return fmt.Errorf("container %s is not running: %w", id, errdefs.ErrFailedPrecondition)
		}
		return fn(c)
	})
}

// Create creates a container and leaves its init waiting for Start.
func (s *Shim) Create(req *shimapi.CreateRequest, resp *shimapi.CreateResponse) error {
	if err := checkCreate(req); err != nil {
		return fmt.Errorf("create container %s: %w", req.ID, err)
	}
	c := &container{
		id:     req.ID,
		dir:    shimapi.BundleDir(s.dir, req.ID),
		cgPath: req.Spec.Linux.CgroupsPath,
		exited: make(chan struct{}),
		state:  shimapi.State{ID: req.ID},
	}
	c.op.Lock()
	defer c.op.Unlock()

	s.mu.Lock()
	switch {
	case s.shutdown:
		s.mu.Unlock()
		return fmt.Errorf("create container %s: shim is shutting down: %w", req.ID, errdefs.ErrFailedPrecondition)
	case s.containers[req.ID] != nil:
		s.mu.Unlock()
		return fmt.Errorf("container %s: %w", req.ID, errdefs.ErrAlreadyExists)
	}
	s.containers[req.ID] = c // reserve the ID
	s.mu.Unlock()

	t0 := time.Now()
	pid, err := s.create(c, req)
	if err != nil {
		c.deleted = true
		s.mu.Lock()
		delete(s.containers, req.ID)
		s.mu.Unlock()
		logrus.WithError(err).WithField("id", req.ID).Warn("create failed")
		return fmt.Errorf("create container %s: %w", req.ID, err)
	}
	logrus.WithFields(logrus.Fields{"id": req.ID, "pid": pid, "took": time.Since(t0)}).Info("created")
	resp.Pid = pid
	return nil
}

func checkCreate(req *shimapi.CreateRequest) error {
	if err := checkID(req.ID); err != nil {
		return err
	}
	switch {
	case req.Spec == nil:
		return fmt.Errorf("no spec: %w", errdefs.ErrInvalidArgument)
	case req.Spec.Process == nil:
		return fmt.Errorf("spec has no process: %w", errdefs.ErrInvalidArgument)
	case req.Spec.Root == nil || !filepath.IsAbs(req.Spec.Root.Path):
		return fmt.Errorf("spec root must be an absolute path: %w", errdefs.ErrInvalidArgument)
	case req.Spec.Linux == nil:
		return fmt.Errorf("spec has no linux section: %w", errdefs.ErrInvalidArgument)
	}
	if err := cgroup.CheckPath(req.Spec.Linux.CgroupsPath); err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if rt := req.Runtime; rt != nil && (!filepath.IsAbs(rt.Path) || !filepath.IsAbs(rt.Root)) {
		return fmt.Errorf("runtime handler %q: path and root must be absolute: %w", rt.Handler, errdefs.ErrInvalidArgument)
	}
	return nil
}

// checkID accepts what libcontainer accepts and is safe as a file name.
func checkID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("bad container ID %q: %w", id, errdefs.ErrInvalidArgument)
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', strings.ContainsRune("_+-.", r):
		default:
			return fmt.Errorf("bad container ID %q: %w", id, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// create does Create's work; on error it leaves nothing behind: each step
// registers its undo, and a failure runs them newest first.
func (s *Shim) create(c *container, req *shimapi.CreateRequest) (int, error) {
	clampOOMScoreAdj(req.Spec.Process)
	newTask, err := s.prepare(c, req)
	if err != nil {
		return 0, err
	}
	cu := cleanup.New(logrus.WithField("id", req.ID))
	defer cu.Run() // logs each undo that fails
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return 0, err
	}
	cu.Add("remove the container's directory", func(context.Context) error { return os.RemoveAll(c.dir) })
	cio, pio, err := stdio.New(req)
	if err != nil {
		return 0, err
	}
	c.io, c.logDir, c.logPath = cio, req.LogDir, req.LogPath
	// The container has its own copies once started; ours must go so the
	// copiers see EOF when the container's processes are gone.
	defer pio.Close()
	if cio != nil {
		cu.Add("close the container's stdio", func(context.Context) error { cio.Abort(); return nil })
	}
	// libcontainer destroys what it made when its start fails; the
	// container's cgroups in the hierarchies it does not manage are ours.
	cu.Add("remove the container's cgroups", func(context.Context) error {
		s.reaper.LockSpawn()
		defer s.reaper.UnlockSpawn()
		return s.cgroups.release(c.cgPath)
	})

	s.reaper.LockSpawn()
	lc, err := newTask(task.IO{Stdin: pio.Stdin, Stdout: pio.Stdout, Stderr: pio.Stderr, ConsoleSocket: pio.ConsoleChild})
	if err != nil {
		s.reaper.UnlockSpawn()
		return 0, err
	}
	pid := lc.Pid()
	s.reaper.Track(pid)
	s.reaper.UnlockSpawn()
	cu.Add("kill and destroy the container", func(context.Context) error { return s.destroyCreated(lc) })

	if pio.ConsoleParent != nil {
		// The init sent the terminal's master while starting; it waits in
		// the socket's buffer.
		master, err := stdio.RecvConsole(pio.ConsoleParent)
		if err != nil {
			return 0, fmt.Errorf("receive terminal: %w", err)
		}
		cio.StartConsole(master)
	}
	cu.Release()
	c.lc = lc
	c.cgPaths = lc.CgroupPaths()
	// Registered before Exec, so an OOM right at start is not missed.
	c.watchOOM()
	var startTime uint64
	if st, err := procfs.ReadStat(pid); err == nil {
		startTime = st.StartTime
	}
	c.mu.Lock()
	c.state.Pid = pid
	c.state.PidStartTime = startTime
	c.state.CreatedAt = time.Now()
	c.state.Tty = req.Spec.Process.Terminal
	c.state.Stdin = req.Stdin
	c.state.StdinOnce = req.Stdin && req.StdinOnce
	c.state.CgroupPaths = c.cgPaths
	c.persistLocked()
	c.mu.Unlock()
	go s.wait(c, pid)
	return pid, nil
}

// prepare readies the creation of c's init and returns the function that
// creates it, which the caller runs under the reaper's spawn lock. The
// default handler converts the spec for libcontainer here, before any
// undo is needed.
func (s *Shim) prepare(c *container, req *shimapi.CreateRequest) (func(task.IO) (task.Container, error), error) {
	if rt := req.Runtime; rt != nil {
		// A runtime handler's: the runtime converts the spec itself.
		r := &ocicli.Runtime{Handler: rt.Handler, Path: rt.Path, Root: rt.Root, Spawn: spawnLocker{s.reaper}}
		return func(io task.IO) (task.Container, error) {
			oc, err := r.Create(req.ID, c.dir, req.Spec, io)
			if err != nil {
				return nil, err
			}
			return oc, nil
		}, nil
	}
	spec, err := s.convert(req.ID, req.Spec)
	if err != nil {
		return nil, err
	}
	if spec.CgroupPath() != c.cgPath {
		return nil, fmt.Errorf("cgroup path %q converted to %q", c.cgPath, spec.CgroupPath())
	}
	return func(io task.IO) (task.Container, error) {
		lc, err := libct.Create(s.lcRoot, req.ID, spec, io)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return lc, nil
	}, nil
}

// spawnLocker is the reaper's spawn lock as a sync.Locker.
type spawnLocker struct{ r *reaper.Reaper }

func (l spawnLocker) Lock()   { l.r.LockSpawn() }
func (l spawnLocker) Unlock() { l.r.UnlockSpawn() }

// destroyCreated kills and reaps a just-created init and destroys its
// libcontainer container, when Create fails after libcontainer created it.
// A failure to kill or reap is logged: the destroy is still tried.
func (s *Shim) destroyCreated(lc task.Container) error {
	pid := lc.Pid()
	if err := lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, task.ErrNotRunning) {
		logrus.WithError(err).WithField("pid", pid).Warn("kill init after failed create")
	}
	if _, err := lc.Wait(); err != nil {
		logrus.WithError(err).WithField("pid", pid).Warn("wait for init after failed create")
	}
	s.reaper.Untrack(pid)
	s.reaper.LockSpawn()
	defer s.reaper.UnlockSpawn()
	return lc.Destroy()
}

// clampOOMScoreAdj raises a requested oom_score_adj below the shim's own to
// the shim's: lowering it needs CAP_SYS_RESOURCE, and the failed write would
// fail the container's start.
func clampOOMScoreAdj(p *specs.Process) {
	if p.OOMScoreAdj == nil {
		return
	}
	own, err := procfs.SelfOOMScoreAdj()
	if err != nil || *p.OOMScoreAdj >= own {
		return
	}
	logrus.WithFields(logrus.Fields{"requested": *p.OOMScoreAdj, "used": own}).Info("clamping oom_score_adj")
	v := own
	p.OOMScoreAdj = &v
}

// wait reaps c's init and records its exit.
func (s *Shim) wait(c *container, pid int) {
	code, err := c.lc.Wait()
	s.reaper.Untrack(pid)
	if err != nil {
		logrus.WithError(err).WithField("id", c.id).Warn("wait for init")
	}
	finished := time.Now()
	// Read before draining the output: under the systemd driver the
	// emptied scope's cgroup goes away as soon as systemd notices.
	oom := c.oomKilled(code)
	if c.io != nil {
		select {
		case <-c.io.Done():
		case <-time.After(logDrainTimeout):
			logrus.WithField("id", c.id).Warn("container output still open after exit")
		}
		c.io.CloseAll()
	}
	c.mu.Lock()
	c.state.FinishedAt = finished
	c.state.ExitCode = code
	c.state.OOMKilled = oom
	c.persistLocked()
	c.mu.Unlock()
	close(c.exited)
	logrus.WithFields(logrus.Fields{"id": c.id, "pid": pid, "exit": code, "oom": oom}).Info("exited")
}

// watchOOM starts watching c's cgroup for OOM kills: its own watch on
// cgroup v2 (cgroup.OOMWatch says why), libcontainer's on v1. A failure is
// logged: the exit is still recorded, perhaps without its OOM.
func (c *container) watchOOM() {
	if dir := c.cgPaths[""]; c.cgPaths["memory"] == "" && dir != "" {
		c.oomBase, _ = fscommon.GetValueByKey(filepath.Dir(dir), "memory.events", "oom_kill")
		w, err := cgroup.WatchOOMKills(dir)
		if err != nil {
			logrus.WithError(err).WithField("id", c.id).Warn("cannot watch for OOM kills")
			return
		}
		c.oomV2 = w
		return
	}
	ch, err := c.lc.NotifyOOM()
	if err != nil {
		logrus.WithError(err).WithField("id", c.id).Warn("cannot watch for OOM events")
		return
	}
	go func() {
		for range ch {
			c.oom.Store(true)
		}
	}()
}

// oomWatchGrace bounds how long an exit waits for the cgroup v2 watch to
// read the cgroup's last notification, which the kernel sends when the
// last process leaves, about when init is reaped.
const oomWatchGrace = time.Second

// oomKilled reports whether the OOM killer killed a process of c, once c's
// init has exited with code. On cgroup v2 the watch's verdict stands once
// it has read the cgroup's last notification. If the cgroup went away
// before anything was read (systemd removes an empty scope at once), an
// init killed by SIGKILL counts as OOM-killed when the pod cgroup's
// oom_kill count, which sums its children's, rose since the container
// began: a sibling's kill at the same moment would be taken for this one,
// an error crib prefers to reporting a real OOM kill as "Error".
func (c *container) oomKilled(code int) bool {
	if c.oom.Load() || oomKillCount(c.cgPaths) > 0 {
		return true
	}
	w := c.oomV2
	if w == nil {
		return false
	}
	select {
	case <-w.Done():
	case <-time.After(oomWatchGrace):
	}
	w.Stop()
	if w.Killed() || oomKillCount(c.cgPaths) > 0 {
		return true
	}
	if code != 128+int(unix.SIGKILL) {
		return false
	}
	if _, err := os.Stat(filepath.Join(c.cgPaths[""], "memory.events")); err == nil {
		return false
	}
	n, err := fscommon.GetValueByKey(filepath.Dir(c.cgPaths[""]), "memory.events", "oom_kill")
	return err == nil && n > c.oomBase
}

// oomKillCount reads the number of processes the kernel's OOM killer
// killed in the container's memory cgroup (0 if unknown): the oom_kill
// line of memory.oom_control on cgroup v1, of memory.events on v2. An exit
// caused by an OOM kill is recorded as such even when the event
// notification (libcontainer's NotifyOOM on v1) has not arrived by the
// time init is reaped.
func oomKillCount(paths map[string]string) uint64 {
	dir, file := paths["memory"], "memory.oom_control"
	if dir == "" {
		dir, file = paths[""], "memory.events"
	}
	if dir == "" {
		return 0
	}
	n, err := fscommon.GetValueByKey(dir, file, "oom_kill")
	if err != nil {
		return 0
	}
	return n
}

// snapshot returns c's state with its Status derived from the timestamps.
func (c *container) snapshot() shimapi.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshotLocked()
}

func (c *container) snapshotLocked() shimapi.State {
	st := c.state
	switch {
	case !st.FinishedAt.IsZero():
		st.Status = shimapi.StatusStopped
	case !st.StartedAt.IsZero():
		st.Status = shimapi.StatusRunning
	case st.Pid != 0:
		st.Status = shimapi.StatusCreated
	default:
		st.Status = shimapi.StatusUnknown // being created
	}
	return st
}

// persistLocked writes c's state to <dir>/state.json (atomically). Failures
// are logged: the file is a record for after the shim, memory is the truth.
func (c *container) persistLocked() {
	data, err := json.Marshal(c.snapshotLocked())
	if err == nil {
		err = WriteFileAtomic(filepath.Join(c.dir, shimapi.StateName), data, 0o600)
	}
	if err != nil {
		logrus.WithError(err).WithField("id", c.id).Warn("persist state")
	}
}

// WriteFileAtomic writes data to path through a temporary file and a rename,
// so readers see the old or the new content, never a torn file, even if the
// shim dies mid-write.
//
// It does not fsync: durability buys nothing here. The shim writes only to
// the pod's run directory under /run, normally a tmpfs that a reboot
// empties, and the files describe processes that a crash of the machine
// kills anyway; a crash of the shim or of cribd loses nothing unsynced.
// Where /run is on disk, a machine crash may leave a stale or empty file:
// cribd then treats shim.pid as a shim that is gone (connect fails with
// Unavailable) and falls back, for an unreadable state.json, to the last
// state it saved itself or to unknown; its processes are gone either way.
// The syncs would all be on the pause path (file and directory, for
// shim.pid and for state.json at Create and at Start); docs/architecture.md
// has what they cost.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Start lets a created container's init exec the container's process.
func (s *Shim) Start(req *shimapi.IDRequest, _ *shimapi.Empty) error {
	return s.withContainer(req.ID, func(c *container) error {
		if st := c.snapshot(); st.Status != shimapi.StatusCreated {
			return fmt.Errorf("start container %s: container is %s, not created: %w", req.ID, st.Status, errdefs.ErrFailedPrecondition)
		}
		if err := c.lc.Exec(); err != nil {
			return fmt.Errorf("start container %s: %w", req.ID, err)
		}
		c.mu.Lock()
		c.state.StartedAt = time.Now()
		if f := c.state.FinishedAt; !f.IsZero() && f.Before(c.state.StartedAt) {
			c.state.StartedAt = f // it exited before we got here
		}
		c.persistLocked()
		c.mu.Unlock()
		logrus.WithField("id", req.ID).Info("started")
		return nil
	})
}

// Kill signals a container's init. Signalling a container whose init has
// exited succeeds and does nothing.
func (s *Shim) Kill(req *shimapi.KillRequest, _ *shimapi.Empty) error {
	if req.Signal <= 0 || req.Signal > 64 {
		return fmt.Errorf("kill container %s: bad signal %d: %w", req.ID, req.Signal, errdefs.ErrInvalidArgument)
	}
	return s.withContainer(req.ID, func(c *container) error {
		select {
		case <-c.exited:
			return nil
		default:
		}
		err := c.lc.Signal(unix.Signal(req.Signal))
		if err != nil && !errors.Is(err, task.ErrNotRunning) {
			return fmt.Errorf("kill container %s: %w", req.ID, err)
		}
		logrus.WithFields(logrus.Fields{"id": req.ID, "signal": req.Signal}).Info("signalled")
		return nil
	})
}

// State reports a container's state.
func (s *Shim) State(req *shimapi.IDRequest, resp *shimapi.State) error {
	// No op lock: a state read must not wait for a Create or Delete.
	c := s.get(req.ID)
	if c == nil {
		return notFound(req.ID)
	}
	*resp = c.snapshot()
	return nil
}

// Delete kills a container if needed, waits for its init, and removes its
// libcontainer state, its cgroups (in every hierarchy, with the parents the
// shim created) and its state file. Deleting an unknown ID succeeds (so
// Delete does not use withContainer).
func (s *Shim) Delete(req *shimapi.IDRequest, _ *shimapi.Empty) error {
	c := s.get(req.ID)
	if c == nil {
		return nil
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.deleted {
		return nil
	}
	t0 := time.Now()
	if err := s.delete(c); err != nil {
		return fmt.Errorf("delete container %s: %w", req.ID, err)
	}
	c.deleted = true
	s.mu.Lock()
	delete(s.containers, req.ID)
	s.mu.Unlock()
	logrus.WithFields(logrus.Fields{"id": req.ID, "took": time.Since(t0)}).Info("deleted")
	return nil
}

func (s *Shim) delete(c *container) error {
	select {
	case <-c.exited:
	default:
		if err := c.lc.Signal(unix.SIGKILL); err != nil && !errors.Is(err, task.ErrNotRunning) {
			logrus.WithError(err).WithField("id", c.id).Warn("SIGKILL")
		}
		select {
		case <-c.exited:
		case <-time.After(killTimeout):
			return fmt.Errorf("init %d still running %v after SIGKILL", c.snapshot().Pid, killTimeout)
		}
	}
	s.reaper.LockSpawn()
	derr := c.lc.Destroy()
	cerr := s.cgroups.release(c.cgPath)
	s.reaper.UnlockSpawn()
	if err := errors.Join(derr, cerr); err != nil {
		return err
	}
	return os.RemoveAll(c.dir)
}

// Shutdown deletes every container, then the shim exits once the reply is
// written. If a Delete fails the shim stays up (refusing new containers) so
// that cribd can retry.
func (s *Shim) Shutdown(_ *shimapi.Empty, _ *shimapi.Empty) error {
	s.mu.Lock()
	s.shutdown = true
	ids := make([]string, 0, len(s.containers))
	for id := range s.containers {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := s.Delete(&shimapi.IDRequest{ID: id}, &shimapi.Empty{}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logrus.Info("shutdown: all containers deleted")
	return nil
}
