// Package libct is crib-shim's one use of runc's libcontainer: spec
// conversion, container creation, exec, signals, cgroup updates and
// destruction. libcontainer is not a stable API: it needs the nsenter
// constructor, a re-exec "init" entry point, and the cgroup device manager
// registered by import, all of which this package links in. Nothing else
// in the shim imports libcontainer.
//
// Importing libct makes the binary libcontainer's init: when it is
// re-executed as "<binary> init", this package's init function becomes the
// container's process and never returns.
package libct

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	// Registers the cgroup device-rule managers; without it every container
	// with device rules fails at cgroup setup.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	// nsexec(), the C constructor that sets up namespaces in "crib-shim init"
	// before the Go runtime starts.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/internal/shim/reaper"
	"github.com/crib-runtime/crib/internal/shim/task"
)

// IsInit reports whether this process is libcontainer's re-exec of
// crib-shim as a container's init ("crib-shim init"), as runc's init.go.
func IsInit() bool {
	return len(os.Args) > 1 && os.Args[1] == "init"
}

func init() {
	if IsInit() {
		// Runs after nsexec() and never returns: it becomes (execs) the
		// container's process.
		resetIgnoredSignals()
		libcontainer.Init()
	}
}

// ErrNotRunning is returned by Signal when the container's init process is
// gone.
var ErrNotRunning = task.ErrNotRunning

// Container is a task.Container: the default handler's.
var _ task.Container = (*Container)(nil)

// Spec is an OCI spec translated for libcontainer: the container config
// and its init process (plain data until started).
type Spec struct {
	config  *configs.Config
	process *libcontainer.Process
}

// Convert translates spec for container id. It does not change the host;
// for a user namespace given by a path other than /proc/<pid>/ns/user it
// reads the namespace's mappings through short-lived child processes, so
// callers hold the reaper's spawn lock (see ConvertThroughProcess for the
// quick way).
func Convert(id string, spec *specs.Spec) (*Spec, error) {
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: id,
		// cribd's cgroupsPath says the driver: "slice:crib:id" has
		// libcontainer's systemd manager start a transient scope
		// crib-<id>.scope in the slice over D-Bus, with the resources as
		// unit properties; a path has the cgroupfs manager write the files.
		UseSystemdCgroup: spec.Linux != nil && cgroup.IsSystemd(spec.Linux.CgroupsPath),
		NoPivotRoot:      false,
		Spec:             spec,
		RootlessEUID:     false,
	})
	if err != nil {
		return nil, fmt.Errorf("convert spec: %w", err)
	}
	p, err := newProcess(spec.Process)
	if err != nil {
		return nil, err
	}
	return &Spec{config: config, process: p}, nil
}

// CgroupPath is the container's cgroup as libcontainer took it: a path
// relative to each hierarchy's root, or systemd's slice:prefix:name.
func (s *Spec) CgroupPath() string {
	if c := s.config.Cgroups; c.Systemd {
		return c.Parent + ":" + c.ScopePrefix + ":" + c.Name
	}
	return s.config.Cgroups.Path
}

// newProcess builds the container's init process from spec.Process, as runc's
// utils_linux.go newProcess does.
func newProcess(p *specs.Process) (*libcontainer.Process, error) {
	lp := &libcontainer.Process{
		Args:            p.Args,
		Env:             p.Env,
		UID:             int(p.User.UID),
		GID:             int(p.User.GID),
		Cwd:             p.Cwd,
		Label:           p.SelinuxLabel,
		NoNewPrivileges: &p.NoNewPrivileges,
		AppArmorProfile: p.ApparmorProfile,
		Scheduler:       p.Scheduler,
		IOPriority:      p.IOPriority,
		Init:            true,
		LogLevel:        strconv.Itoa(int(logrus.GetLevel())),
	}
	// A nil Capabilities would fall back to the container config, which
	// specconv built from the same spec; an empty set drops everything.
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding:    c.Bounding,
			Effective:   c.Effective,
			Inheritable: c.Inheritable,
			Permitted:   c.Permitted,
			Ambient:     c.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, rl := range p.Rlimits {
		t, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		lp.Rlimits = append(lp.Rlimits, configs.Rlimit{Type: t, Hard: rl.Hard, Soft: rl.Soft})
	}
	aff, err := configs.ConvertCPUAffinity(p.ExecCPUAffinity)
	if err != nil {
		return nil, err
	}
	lp.CPUAffinity = aff
	return lp, nil
}

var rlimitTypes = map[string]int{
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
}

// Container is a created libcontainer container and its init process.
type Container struct {
	c *libcontainer.Container
	p *libcontainer.Process
}

// Create creates container id under root and starts its init, which then
// waits on the exec fifo until Exec. Nil files in stdio are /dev/null; with
// a console socket libcontainer gives the process a new terminal and sends
// its master there (the size is the kernel's default). On failure, whatever
// libcontainer created (state directory, cgroups) is destroyed. The caller
// holds the reaper's spawn lock: libcontainer waits for the intermediate
// "init" processes itself.
func Create(root, id string, s *Spec, stdio IO) (*Container, error) {
	c, err := libcontainer.Create(root, id, s.config)
	if err != nil {
		return nil, err
	}
	p := s.process
	// A nil *os.File in an io.Reader/io.Writer field is not nil: set only
	// the files there are.
	if stdio.Stdin != nil {
		p.Stdin = stdio.Stdin
	}
	if stdio.Stdout != nil {
		p.Stdout = stdio.Stdout
	}
	if stdio.Stderr != nil {
		p.Stderr = stdio.Stderr
	}
	if stdio.ConsoleSocket != nil {
		p.ConsoleSocket = stdio.ConsoleSocket
	}
	if err := c.Start(p); err != nil {
		if derr := c.Destroy(); derr != nil {
			logrus.WithError(derr).WithField("id", id).Warn("destroy after failed start")
		}
		return nil, err
	}
	return &Container{c: c, p: p}, nil
}

// Pid is the init process's PID in the shim's PID namespace.
func (c *Container) Pid() int {
	pid, err := c.p.Pid()
	if err != nil {
		return 0
	}
	return pid
}

// CgroupPaths are the container's cgroup directories as libcontainer's
// cgroup manager reports them: v1 controller → directory, or, on cgroup
// v2, "" → the unified directory (nil if unknown).
func (c *Container) CgroupPaths() map[string]string {
	st, err := c.c.State()
	if err != nil {
		return nil
	}
	return st.CgroupPaths
}

// NotifyOOM returns a channel that receives a value at each OOM event in the
// container's memory cgroup and is closed when the cgroup goes away.
func (c *Container) NotifyOOM() (<-chan struct{}, error) {
	return c.c.NotifyOOM()
}

// Exec lets the waiting init exec the container's process, and returns once
// it has (or has died, or after execWaitTimeout).
//
// libcontainer's Exec returns as soon as the init has passed the exec fifo,
// before the init's execve: Start could then return while /proc/<pid>/exe
// still named crib-shim, and TestPauseLifecycle failed that way once the
// shim stopped fsyncing state.json after Exec (which used to cover the gap).
// Until its execve the init is named "runc:[2:INIT]" (libcontainer's
// nsexec.c sets that comm). The init still closes its descriptors and the
// execve drops a Go process's threads and address space, which takes a
// millisecond or two: polling every 100 µs for the first 10 ms keeps the
// overshoot small at little CPU a poll (docs/architecture.md, "crib-shim
// inside", has the measurements), then every 2 ms for what is probably a
// StartContainer hook.
func (c *Container) Exec() error {
	if err := c.c.Exec(); err != nil {
		return err
	}
	pid := c.Pid()
	start := time.Now()
	for time.Since(start) < execWaitTimeout {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.Dead() || st.Comm != initComm {
			return nil
		}
		if time.Since(start) < 10*time.Millisecond {
			time.Sleep(100 * time.Microsecond)
		} else {
			time.Sleep(2 * time.Millisecond) // StartContainer hooks, probably
		}
	}
	logrus.WithField("pid", pid).Warn("container init has not exec'd yet; Start returns anyway")
	return nil
}

// initComm is the name libcontainer's nsexec gives a container's init until
// it execs the container's process.
const initComm = "runc:[2:INIT]"

// execWaitTimeout bounds exec's wait for the init's execve (StartContainer
// hooks run before it).
const execWaitTimeout = 2 * time.Second

// Wait reaps the init process and returns its exit code (128+signal if it
// was killed). Call it once.
func (c *Container) Wait() (int, error) { return waitProcess(c.p) }

// waitProcess reaps p and returns its exit code (128+signal if killed).
func waitProcess(p *libcontainer.Process) (int, error) {
	ps, err := p.Wait()
	if ps == nil {
		if err == nil {
			err = errors.New("no process state")
		}
		return 255, err
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return 255, fmt.Errorf("unexpected wait status %T", ps.Sys())
	}
	return reaper.ExitCode(unix.WaitStatus(ws)), nil
}

// Signal sends sig to the container's init, which libcontainer first checks
// by PID and start time. With a shared PID namespace, SIGKILL goes to every
// process of the container's cgroup. Returns ErrNotRunning if init is gone.
func (c *Container) Signal(sig unix.Signal) error {
	err := c.c.Signal(sig)
	if errors.Is(err, libcontainer.ErrNotRunning) {
		return ErrNotRunning
	}
	return err
}

// Destroy removes the container's libcontainer state and cgroups (the init
// must have been reaped). The caller holds the reaper's spawn lock: destroy
// may run poststop hooks and wait for them.
func (c *Container) Destroy() error {
	return c.c.Destroy()
}

// Checkpoint dumps the container through CRIU's swrk RPC (libcontainer
// starts `criu swrk`, so the caller holds the reaper's spawn lock) and
// leaves it running. The pod's namespaces the container joined by path
// (network, PID) are dumped as external, its bind mounts (the pod's files,
// volumes) as external mounts: a restore finds them again. Established TCP
// connections are dumped too, as CRI-O does for kubelet's checkpoints:
// without it a container with one fails the dump. cgroups are left as they
// are ("ignore"): the container's cgroup belongs to the node's manager.
func (c *Container) Checkpoint(imagesDir, workDir string) error {
	return c.c.Checkpoint(&libcontainer.CriuOpts{
		ImagesDirectory:   imagesDir,
		WorkDirectory:     workDir,
		LeaveRunning:      true,
		TcpEstablished:    true,
		FileLocks:         true,
		ManageCgroupsMode: "ignore",
		StatusFd:          -1,
	})
}

// Process is a process run in a running container next to its init.
type Process struct {
	p *libcontainer.Process
}

// IO is a process's stdio (see task.IO).
type IO = task.IO

// Run starts args in container c with the init's user, groups,
// environment, working directory, capabilities, no_new_privs and rlimits
// (as runc exec does from the container's spec), and stdio. The caller
// holds the reaper's spawn lock and must wait for the process.
func (c *Container) Run(args []string, stdio IO) (task.Process, error) {
	init := c.p
	p := &libcontainer.Process{
		Args:             args,
		Env:              init.Env,
		UID:              init.UID,
		GID:              init.GID,
		AdditionalGroups: init.AdditionalGroups,
		Cwd:              init.Cwd,
		Capabilities:     init.Capabilities,
		NoNewPrivileges:  init.NoNewPrivileges,
		AppArmorProfile:  init.AppArmorProfile,
		Rlimits:          init.Rlimits,
		Stdin:            stdio.Stdin,
		Stdout:           stdio.Stdout,
		Stderr:           stdio.Stderr,
		ConsoleSocket:    stdio.ConsoleSocket,
		ConsoleWidth:     stdio.Width,
		ConsoleHeight:    stdio.Height,
		Init:             false,
		LogLevel:         init.LogLevel,
	}
	// A nil *os.File in an io.Reader/io.Writer field is not nil: leave
	// the fields unset for /dev/null.
	if stdio.Stdin == nil {
		p.Stdin = nil
	}
	if stdio.Stdout == nil {
		p.Stdout = nil
	}
	if stdio.Stderr == nil {
		p.Stderr = nil
	}
	if err := c.c.Run(p); err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// Pid is the exec process's PID in the shim's PID namespace.
func (e *Process) Pid() int {
	pid, err := e.p.Pid()
	if err != nil {
		return 0
	}
	return pid
}

// Wait reaps the exec process and returns its exit code.
func (e *Process) Wait() (int, error) { return waitProcess(e.p) }

// Update applies new cgroup resources, keeping the container's device
// rules (the CRI update carries none).
func (c *Container) Update(res *specs.LinuxResources) error {
	cfg := c.c.Config()
	cg, err := specconv.CreateCgroupConfig(&specconv.CreateOpts{
		CgroupName: c.c.ID(),
		Spec:       &specs.Spec{Linux: &specs.Linux{Resources: res}},
	}, nil)
	if err != nil {
		return fmt.Errorf("convert resources: %w", err)
	}
	r := cg.Resources
	r.Devices = cfg.Cgroups.Resources.Devices
	r.SkipDevices = cfg.Cgroups.Resources.SkipDevices
	cfg.Cgroups.Resources = r
	return c.c.Set(cfg)
}

// resetIgnoredSignals gives every signal this process inherited as ignored
// its default action again, so the container's process starts with none
// ignored whatever started cribd: SIG_IGN survives fork and execve, and the
// Go runtime keeps an inherited SIG_IGN for the signals it does not handle
// itself (SIGHUP, SIGINT, signal 32). Under GNU make, for one, every child
// starts with signals 32 and 33 ignored, and containers inherited that.
// Only the re-exec'd init runs it: it is about to exec the container.
func resetIgnoredSignals() {
	// The kernel's struct sigaction: handler, flags, restorer, mask; 4
	// words hold it on the architectures crib builds for. Only the
	// handler is read, and an all-zero one is SIG_DFL.
	const sigIgn = 1
	var dfl, old [4]uint64
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0,
			uintptr(unsafe.Pointer(&old)), 8, 0, 0); errno != 0 || old[0] != sigIgn {
			continue
		}
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	}
}
