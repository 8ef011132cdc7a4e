// Package shim holds the wire types between cribd and crib-shim, the per-pod
// monitor process. The transport is net/rpc with the JSON codec over a unix
// socket in the pod's run directory; every method lives on the "Shim"
// service, e.g. "Shim.Create".
//
// Lifecycle: cribd starts `crib-shim --dir <pod run dir>` in its own session
// with a pipe as fd 3. The shim makes itself a child subreaper, listens on
// <dir>/shim.sock, writes its PID to <dir>/shim.pid, then writes "ok\n" to
// fd 3 and closes it (or writes an error line and exits non-zero). cribd then
// creates and starts the pause container, and later the app containers,
// through the methods below. The shim outlives cribd: a restarted cribd
// reconnects to <dir>/shim.sock.
package shim

import (
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// File names inside the pod's run directory.
const (
	SocketName = "shim.sock"
	PIDName    = "shim.pid"
	LogName    = "shim.log"
	// ReadyFD is the descriptor number of the readiness pipe in the shim.
	ReadyFD = 3
	// ContainersName is the folder of the run directory that holds one
	// bundle directory per container.
	ContainersName = "containers"
	// StateName is the file in a container's bundle directory where the
	// shim records its State, replaced atomically on every change; cribd
	// watches for it.
	StateName = "state.json"
)

// BundleDir is container id's bundle directory in the shim's run directory.
func BundleDir(runDir, id string) string {
	return filepath.Join(runDir, ContainersName, id)
}

// StateFile is where the shim in runDir records container id's State.
func StateFile(runDir, id string) string {
	return filepath.Join(BundleDir(runDir, id), StateName)
}

// Method names.
const (
	MethodCreate   = "Shim.Create"
	MethodStart    = "Shim.Start"
	MethodKill     = "Shim.Kill"
	MethodState    = "Shim.State"
	MethodDelete   = "Shim.Delete"
	MethodShutdown = "Shim.Shutdown"
	MethodExec     = "Shim.Exec"
	MethodReopen   = "Shim.ReopenLog"
	MethodUpdate   = "Shim.Update"
	// MethodExecStart's reply carries descriptors (see ExecStartResponse):
	// cribd calls it alone on a connection of its own.
	MethodExecStart = "Shim.ExecStart"
	MethodExecWait  = "Shim.ExecWait"
	// MethodAttach's reply carries descriptors too (see AttachResponse).
	MethodAttach = "Shim.Attach"
	MethodResize = "Shim.Resize"
	// MethodCheckpoint dumps a running container through CRIU and leaves
	// it running (see CheckpointRequest).
	MethodCheckpoint = "Shim.Checkpoint"
)

// UnknownMethodPrefix starts the error a shim answers for a method it does
// not have: one started by an older crib, which keeps running its own
// binary across cribd upgrades.
const UnknownMethodPrefix = "rpc: can't find method "

// MaxExecOutput bounds what Exec returns of each of stdout and stderr; the
// rest is dropped (the process still runs to its end).
const MaxExecOutput = 16 << 20

// ExecRequest runs a process in a running container, with the container
// process's user, environment, working directory, capabilities and
// security settings; only the arguments differ.
type ExecRequest struct {
	ID   string
	Args []string
	// Timeout, when positive, kills the process after this long; the
	// response then has TimedOut set.
	Timeout time.Duration
}

// ExecResponse is what an exec process wrote and how it ended.
type ExecResponse struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
	TimedOut bool
}

// ExecStartRequest starts a process in a running container, set up like
// ExecRequest's, whose stdio the caller drives through the descriptors the
// reply carries (CRI streaming exec).
type ExecStartRequest struct {
	ID   string
	Args []string
	// Stdin gives the process a pipe as stdin; otherwise it reads /dev/null.
	Stdin bool
	// Tty gives the process a pseudo-terminal as stdin, stdout and stderr.
	Tty bool
	// Width and Height are the terminal's initial size (Tty only; 0 keeps
	// the kernel's default).
	Width, Height uint16
}

// ExecStartResponse names the started process. Its descriptors travel
// with the JSON reply as SCM_RIGHTS ancillary data, in this order: with
// Tty, the terminal's master; otherwise the read ends of stdout and
// stderr, then the write end of stdin if requested.
type ExecStartResponse struct {
	// Pid is the process's PID in the shim's namespace; ExecWait takes it.
	Pid int
	// Files are the descriptors; never encoded as JSON.
	Files []*os.File `json:"-"`
}

// ExecWaitRequest waits for a process ExecStart started.
type ExecWaitRequest struct {
	ID  string
	Pid int
}

// ExecWaitResponse is how the process ended (128+signal if killed).
type ExecWaitResponse struct {
	ExitCode int
}

// UpdateRequest changes a container's cgroup resources.
type UpdateRequest struct {
	ID        string
	Resources *specs.LinuxResources
}

// CheckpointRequest dumps running container ID's processes with CRIU into
// ImagesDir, CRIU's log and scratch files into WorkDir (both made by the
// caller, empty), and leaves the container running.
type CheckpointRequest struct {
	ID                 string
	ImagesDir, WorkDir string
}

// CreateRequest creates a container from an OCI spec. The shim converts the
// spec with libcontainer's specconv, creates the cgroups named by
// Spec.Linux.CgroupsPath, and leaves the init process waiting for Start.
type CreateRequest struct {
	// ID is the container ID (64 hex); the pause container uses the pod ID.
	ID string
	// Bundle is a directory the shim may use for this container's files.
	Bundle string
	// Spec is the OCI runtime spec; Spec.Root.Path is the rootfs (absolute).
	Spec *specs.Spec
	// LogPath, if set, receives the process's stdout/stderr in CRI log format
	// (with Spec.Process.Terminal, the terminal's output as stdout).
	LogPath string
	// LogDir is the pod's log directory: LogPath is resolved beneath it
	// and neither the file nor any directory between them may be a
	// symlink. Empty means LogPath's own directory.
	LogDir string
	// Attachable keeps the process's output streams in the shim even
	// without a LogPath, for Attach (app containers; the pause container's
	// output goes to /dev/null). A terminal or Stdin implies it.
	Attachable bool
	// Stdin keeps an input stream open for the container's life, fed by
	// Attach sessions: a pipe, or the terminal's input with
	// Spec.Process.Terminal. Without it the process reads /dev/null.
	Stdin bool
	// StdinOnce closes the container's stdin once the first Attach session
	// that sent stdin ends it (EOF on a pipe; the terminal's EOF character,
	// as for ^D, on a terminal). Only with Stdin.
	StdinOnce bool
	// Runtime, if set, runs the container through an external OCI
	// runtime's runc-compatible CLI (a runtime handler); nil runs it with
	// libcontainer inside the shim (the default handler, and always the
	// pause container).
	Runtime *Runtime `json:",omitempty"`
}

// Runtime is an external OCI runtime: a runc-compatible binary and the
// state directory it is given with --root.
type Runtime struct {
	// Handler is the CRI runtime handler's name, for logs and errors.
	Handler string
	// Path is the runtime's executable (absolute).
	Path string
	// Root is the runtime's state directory (absolute), one per handler.
	Root string
}

// AttachRequest connects a session to a running container's stdio. With a
// terminal the container has one output stream, stdout.
type AttachRequest struct {
	ID string
	// Stdin sends the session's input to the container's stdin (which
	// must have been created with CreateRequest.Stdin).
	Stdin bool
	// Stdout and Stderr ask for the live output streams (Stderr is refused
	// for a container with a terminal).
	Stdout, Stderr bool
}

// AttachResponse carries the session's descriptors as SCM_RIGHTS with the
// JSON reply, in this order: the write end of a stdin pipe (if Stdin), the
// read end of a stdout pipe (if Stdout), the read end of a stderr pipe (if
// Stderr). The output pipes reach EOF when the container's output ends (its
// processes are gone) or the session ends: closing the stdin pipe ends the
// session unless the container has StdinOnce, whose stdin is closed instead
// and whose output keeps flowing to the session until the container exits.
// A session that reads too slowly to keep up with the container (more than
// MaxAttachBacklog bytes behind) is cut off; the container and its log
// never wait for a session.
type AttachResponse struct {
	// Tty says the container has a terminal.
	Tty bool
	// Files are the descriptors; never encoded as JSON.
	Files []*os.File `json:"-"`
}

// MaxAttachBacklog bounds the output the shim holds for one Attach stream
// that its reader has not taken yet.
const MaxAttachBacklog = 4 << 20

// ResizeRequest sets the size of a container's terminal.
type ResizeRequest struct {
	ID            string
	Width, Height uint16
}

// CreateResponse reports the created init process.
type CreateResponse struct {
	Pid int
}

// IDRequest names one container.
type IDRequest struct {
	ID string
}

// KillRequest signals a container's init process.
type KillRequest struct {
	ID     string
	Signal int
}

// Empty is the response of methods that return nothing.
type Empty struct{}

// Status is a container's lifecycle state as the shim sees it.
type Status string

// Container states.
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusStopped Status = "stopped"
	StatusUnknown Status = "unknown"
)

// State is what the shim knows about one container.
type State struct {
	ID     string
	Status Status
	// Pid is the init process's PID in the host namespace (0 if none).
	Pid int
	// PidStartTime is field 22 of /proc/<pid>/stat, to detect PID reuse.
	PidStartTime uint64
	CreatedAt    time.Time
	StartedAt    time.Time
	FinishedAt   time.Time
	ExitCode     int
	OOMKilled    bool
	// Reason and Message, when set, say why the container stopped when its
	// exit was not seen: cribd sets them (the shim never does) in the state
	// it saves in a container's record when the pod's shim died.
	Reason  string `json:",omitempty"`
	Message string `json:",omitempty"`
	// Tty, Stdin and StdinOnce are the container's stdio as created (see
	// CreateRequest).
	Tty       bool `json:",omitempty"`
	Stdin     bool `json:",omitempty"`
	StdinOnce bool `json:",omitempty"`
	// CgroupPaths are the container's cgroup directories as libcontainer
	// made them, under whichever cgroup driver: on cgroup v1 one absolute
	// directory per controller, on v2 the unified directory under the key
	// "". cribd samples stats there. Empty from shims older than the field.
	CgroupPaths map[string]string `json:",omitempty"`
}
