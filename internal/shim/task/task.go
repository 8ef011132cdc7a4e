// Package task is the seam between crib-shim's service and what runs its
// containers: libcontainer in-process (internal/shim/libct, the default
// handler) or an external OCI runtime's runc-compatible CLI
// (internal/shim/ocicli, a configured runtime handler). The service holds
// the state machine, stdio, OOM accounting and state files; a Container
// only creates, starts, signals, waits for, updates and destroys.
package task

import (
	"errors"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNotRunning is returned by Signal when the container's init process is
// gone.
var ErrNotRunning = errors.New("container not running")

// IO is a process's stdio: files (nil is /dev/null), or a console socket
// on which the runtime sends the master of a new pseudo-terminal that
// becomes the process's stdio, of the given size (Run only; 0 keeps the
// kernel's default).
type IO struct {
	Stdin, Stdout, Stderr *os.File
	ConsoleSocket         *os.File
	Width, Height         uint16
}

// Container is a created container whose init the shim reaps: the shim is
// its parent, or its subreaper once the runtime that forked it has exited.
//
// Create, Run, Checkpoint and Destroy fork children the implementation
// waits for itself, so their callers hold the reaper's spawn lock; the
// other methods take it themselves if they need it.
type Container interface {
	// Pid is the init process's PID in the shim's PID namespace.
	Pid() int
	// CgroupPaths are the container's cgroup directories: v1 controller →
	// directory, or "" → the unified directory on cgroup v2 (nil if unknown).
	CgroupPaths() map[string]string
	// NotifyOOM returns a channel that receives a value at each OOM event
	// of the container's memory cgroup (cgroup v1).
	NotifyOOM() (<-chan struct{}, error)
	// Exec lets the waiting init exec the container's process (OCI start).
	Exec() error
	// Wait reaps the init and returns its exit code (128+signal if it was
	// killed). Call it once.
	Wait() (int, error)
	// Signal sends sig to the init; ErrNotRunning if it is gone.
	Signal(sig unix.Signal) error
	// Update applies new cgroup resources.
	Update(res *specs.LinuxResources) error
	// Run starts args in the container beside its init, with the init's
	// identity and environment; the caller waits for the process.
	Run(args []string, stdio IO) (Process, error)
	// Checkpoint dumps the running container's processes with CRIU into
	// imagesDir (CRIU's log and scratch files into workDir) and leaves them
	// running.
	Checkpoint(imagesDir, workDir string) error
	// Destroy removes the runtime's state and the container's cgroups (the
	// init must have been reaped).
	Destroy() error
}

// Process is a process Run started.
type Process interface {
	// Pid is the process's PID in the shim's PID namespace.
	Pid() int
	// Wait reaps the process and returns its exit code. Call it once.
	Wait() (int, error)
}
