package main

// All of crib-shim's use of libcontainer lives in this file. libcontainer is
// not a stable API: it needs the nsenter constructor, a re-exec "init" entry
// point, and the cgroup device manager registered by import. Nothing else in
// the shim imports it.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

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
)

// isContainerInit reports whether this process is libcontainer's re-exec of
// crib-shim as a container's init ("crib-shim init"), as runc's init.go.
func isContainerInit() bool {
	return len(os.Args) > 1 && os.Args[1] == "init"
}

func init() {
	if isContainerInit() {
		// Runs after nsexec() and never returns: it becomes (execs) the
		// container's process.
		libcontainer.Init()
	}
}

// errNotRunning: the container's init process is gone.
var errNotRunning = errors.New("container not running")

// lcSpec is an OCI spec translated for libcontainer: the container config
// and its init process (plain data until started).
type lcSpec struct {
	config  *configs.Config
	process *libcontainer.Process
}

// convertSpec translates spec for container id. It does not touch the host.
func convertSpec(id string, spec *specs.Spec) (*lcSpec, error) {
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       id,
		UseSystemdCgroup: false,
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
	return &lcSpec{config: config, process: p}, nil
}

// cgroupPath is the container's cgroup, relative to each hierarchy's root.
func (s *lcSpec) cgroupPath() string { return s.config.Cgroups.Path }

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

// lcContainer is a created libcontainer container and its init process.
type lcContainer struct {
	c *libcontainer.Container
	p *libcontainer.Process
}

// createContainer creates container id under root and starts its init, which
// then waits on the exec fifo until exec. stdout and stderr may be nil
// (/dev/null). On failure, whatever libcontainer created (state directory,
// cgroups) is destroyed. The caller holds the reaper's spawn lock:
// libcontainer waits for the intermediate "init" processes itself.
func createContainer(root, id string, s *lcSpec, stdout, stderr *os.File) (*lcContainer, error) {
	c, err := libcontainer.Create(root, id, s.config)
	if err != nil {
		return nil, err
	}
	p := s.process
	if stdout != nil {
		p.Stdout = stdout
	}
	if stderr != nil {
		p.Stderr = stderr
	}
	if err := c.Start(p); err != nil {
		if derr := c.Destroy(); derr != nil {
			logrus.WithError(derr).WithField("id", id).Warn("destroy after failed start")
		}
		return nil, err
	}
	return &lcContainer{c: c, p: p}, nil
}

// pid is the init process's PID in the shim's PID namespace.
func (c *lcContainer) pid() int {
	pid, err := c.p.Pid()
	if err != nil {
		return 0
	}
	return pid
}

// memoryCgroupDir is the container's memory cgroup directory ("" if none).
func (c *lcContainer) memoryCgroupDir() string {
	st, err := c.c.State()
	if err != nil {
		return ""
	}
	return st.CgroupPaths["memory"]
}

// notifyOOM returns a channel that receives a value at each OOM event in the
// container's memory cgroup and is closed when the cgroup goes away.
func (c *lcContainer) notifyOOM() (<-chan struct{}, error) {
	return c.c.NotifyOOM()
}

// exec lets the waiting init exec the container's process.
func (c *lcContainer) exec() error {
	return c.c.Exec()
}

// wait reaps the init process and returns its exit code (128+signal if it
// was killed). Call it once.
func (c *lcContainer) wait() (int, error) {
	ps, err := c.p.Wait()
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
	return exitCode(unix.WaitStatus(ws)), nil
}

// signal sends sig to the container's init, which libcontainer first checks
// by PID and start time. With a shared PID namespace, SIGKILL goes to every
// process of the container's cgroup. Returns errNotRunning if init is gone.
func (c *lcContainer) signal(sig unix.Signal) error {
	err := c.c.Signal(sig)
	if errors.Is(err, libcontainer.ErrNotRunning) {
		return errNotRunning
	}
	return err
}

// destroy removes the container's libcontainer state and cgroups (the init
// must have been reaped). The caller holds the reaper's spawn lock: destroy
// may run poststop hooks and wait for them.
func (c *lcContainer) destroy() error {
	return c.c.Destroy()
}
