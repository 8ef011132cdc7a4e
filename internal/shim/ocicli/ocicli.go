// Package ocicli runs a runtime handler's containers through an external
// OCI runtime's runc-compatible command line (runc, crun): create, start,
// kill, delete, state, exec and update, with the bundle's config.json the
// spec crib built. The shim stays the containers' parent: the runtime forks
// the init and exits, the kernel hands the init to the shim (a child
// subreaper), and the shim waits for it, so exit codes and OOM kills are
// recorded as for the default handler.
//
// Stdio: without a terminal the runtime passes its own stdin, stdout and
// stderr (the shim's pipes) to the process; with one it sends the
// terminal's master to a console socket, which this package listens on and
// forwards to the socket the shim gave (task.IO.ConsoleSocket), so the
// shim's terminal code is the same for both handlers. The runtime's own
// messages go to a log file in the bundle, quoted in errors.
package ocicli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/shim/reaper"
	"github.com/crib-runtime/crib/internal/shim/task"
)

// Files in a container's bundle directory.
const (
	configName = "config.json"
	logName    = "runtime.log"
	pidName    = "init.pid"
)

// bundleOCIVersion is the ociVersion written to config.json. crib's spec
// says the version of the runtime-spec module it was built with, but crun
// before 1.9 refuses anything but 1.0.x ("unknown version specified").
// Runtimes read the fields they know whatever the version says, so 1.0.2
// (runc 1.1's) costs nothing with newer ones.
const bundleOCIVersion = "1.0.2"

// consoleTimeout bounds the wait for the terminal's master, which the
// runtime has sent before it exits.
const consoleTimeout = 5 * time.Second

// Files are the descriptors a runtime command gets as its stdio (nil is
// /dev/null).
type Files struct {
	Stdin, Stdout, Stderr *os.File
}

// Runner runs the runtime binary at path with args and returns what it
// wrote to stdout when files.Stdout is nil. It is the package's seam to
// the OS: tests fake it.
type Runner func(path string, args []string, files Files) ([]byte, error)

// execRunner runs the command as a child of the shim and waits for it.
func execRunner(path string, args []string, files Files) ([]byte, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = runtimeEnv(os.Environ())
	// A nil *os.File in an io.Reader/io.Writer field is not nil: set only
	// the files there are (so the command gets /dev/null for the rest).
	if files.Stdin != nil {
		cmd.Stdin = files.Stdin
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if files.Stdout != nil {
		cmd.Stdout = files.Stdout
	}
	if files.Stderr != nil {
		cmd.Stderr = files.Stderr
	}
	err := cmd.Run()
	if err != nil && errOut.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), err
}

// runtimeEnv is environ without NOTIFY_SOCKET. cribd under systemd
// (Type=notify) has it, and its shims inherit it; runc and crun take it as
// the caller's wish to hear the container's own READY=1: create binds a
// socket into the container and start waits until the container sends
// READY=1 on it, which a container that is not a notify service never does,
// so start never returns.
func runtimeEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}

// Runtime is one runtime handler's OCI runtime.
type Runtime struct {
	// Handler names the runtime handler in errors.
	Handler string
	// Path is the runtime's executable; Root its state directory (--root).
	Path, Root string
	// Run runs the binary; nil runs it for real.
	Run Runner
	// Spawn is held around the commands of the container methods that take
	// no spawn lock from their caller (Exec, Signal, Update, State): the
	// reaper must not reap the runtime's process before the command's own
	// wait does.
	Spawn sync.Locker
}

func (r *Runtime) run(args []string, files Files) ([]byte, error) {
	if r.Run != nil {
		return r.Run(r.Path, args, files)
	}
	return execRunner(r.Path, args, files)
}

// Container is a container created through the runtime.
type Container struct {
	rt      *Runtime
	id      string
	bundle  string
	systemd bool
	pid     int
	process specs.Process // the init's, the template of Run's processes
	cgPaths map[string]string
}

var _ task.Container = (*Container)(nil)

// globalArgs are the options before the command: the state root, the log
// file in the bundle, and the cgroup driver of cgroupsPath.
func (c *Container) globalArgs() []string {
	args := []string{"--root", c.rt.Root, "--log", filepath.Join(c.bundle, logName)}
	if c.systemd {
		args = append(args, "--systemd-cgroup")
	}
	return args
}

// cmd runs one runtime command on the container. On failure the error
// quotes the runtime's log, whose lines are JSON or text depending on the
// runtime.
func (c *Container) cmd(files Files, args ...string) ([]byte, error) {
	out, err := c.rt.run(append(c.globalArgs(), args...), files)
	if err != nil {
		if msg := lastLogLine(filepath.Join(c.bundle, logName)); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return out, fmt.Errorf("%s %s: %w", c.rt.Handler, args[0], err)
	}
	return out, nil
}

// lastLogLine is the message of the runtime log's last line: the "msg" of
// runc's and crun's JSON lines, or the line itself.
func lastLogLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	var entry struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal([]byte(last), &entry) == nil && entry.Msg != "" {
		return entry.Msg
	}
	const max = 512
	if len(last) > max {
		last = last[:max]
	}
	return last
}

// Create writes spec as the bundle's config.json and has the runtime create
// container id, whose init then waits for Exec. The caller holds the
// reaper's spawn lock (the init is orphaned to the shim when the runtime
// exits, and must be tracked before the reaper scans again). On failure
// the runtime's state of the container is deleted.
func (r *Runtime) Create(id, bundle string, spec *specs.Spec, stdio task.IO) (_ *Container, retErr error) {
	c := &Container{rt: r, id: id, bundle: bundle, process: *spec.Process}
	c.systemd = spec.Linux != nil && cgroup.IsSystemd(spec.Linux.CgroupsPath)
	bspec := *spec
	bspec.Version = bundleOCIVersion
	data, err := json.Marshal(&bspec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, configName), data, 0o600); err != nil {
		return nil, err
	}
	args := []string{"create", "--bundle", bundle, "--pid-file", filepath.Join(bundle, pidName)}
	var console *consoleSocket
	if stdio.ConsoleSocket != nil {
		if console, err = listenConsole(); err != nil {
			return nil, err
		}
		defer console.Close()
		args = append(args, "--console-socket", console.path)
	}
	args = append(args, id)
	if _, err := c.cmd(Files{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr}, args...); err != nil {
		// The runtime may have left its state, a cgroup or a process.
		_ = c.Destroy()
		return nil, err
	}
	defer func() {
		if retErr != nil {
			if c.pid > 0 {
				_ = unix.Kill(c.pid, unix.SIGKILL)
				_, _ = waitPID(c.pid)
			}
			_ = c.Destroy()
		}
	}()
	if c.pid, err = readPID(filepath.Join(bundle, pidName)); err != nil {
		return nil, err
	}
	if console != nil {
		if err := console.forward(stdio.ConsoleSocket); err != nil {
			return nil, err
		}
	}
	c.cgPaths = cgroupPaths(c.pid)
	return c, nil
}

// readPID reads a pid file the runtime wrote.
func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: bad pid %q", path, data)
	}
	return pid, nil
}

// cgroupPaths maps the init's cgroups to directories in the shape
// libcontainer reports (shimapi.State.CgroupPaths): on cgroup v2 "" → the
// unified directory, on v1 each controller → its directory (the hybrid
// layout's unified hierarchy left out, as libcontainer's v1 manager does).
func cgroupPaths(pid int) map[string]string {
	procs, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	paths := make(map[string]string)
	if cgroups.IsCgroup2UnifiedMode() {
		if p, ok := procs[""]; ok {
			paths[""] = filepath.Join(cgroup.Root, p)
		}
		return paths
	}
	for ctrl, p := range procs {
		if ctrl == "" {
			continue
		}
		mnt, err := cgroups.FindCgroupMountpoint("", strings.TrimPrefix(ctrl, "name="))
		if err != nil {
			continue
		}
		paths[ctrl] = filepath.Join(mnt, p)
	}
	return paths
}

// Pid is the init's PID.
func (c *Container) Pid() int { return c.pid }

// CgroupPaths are the init's cgroup directories, read at Create.
func (c *Container) CgroupPaths() map[string]string { return c.cgPaths }

// NotifyOOM returns a closed channel: the runtime's own event stream is not
// followed, and the shim reads the cgroup's oom_kill counter when the init
// exits (memory.oom_control on v1, memory.events on v2), as it does for
// the default handler.
func (c *Container) NotifyOOM() (<-chan struct{}, error) {
	ch := make(chan struct{})
	close(ch)
	return ch, nil
}

// Exec starts the container's process (the runtime's start command).
func (c *Container) Exec() error {
	c.rt.Spawn.Lock()
	defer c.rt.Spawn.Unlock()
	_, err := c.cmd(Files{}, "start", c.id)
	return err
}

// Wait reaps the init and returns its exit code.
func (c *Container) Wait() (int, error) { return waitPID(c.pid) }

// waitPID reaps pid, a child of the shim, and returns its exit code
// (128+signal if killed).
func waitPID(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255, fmt.Errorf("wait for %d: %w", pid, err)
		}
		return reaper.ExitCode(ws), nil
	}
}

// Signal has the runtime send sig to the init. A container the runtime
// reports stopped, or no longer knows, is task.ErrNotRunning.
func (c *Container) Signal(sig unix.Signal) error {
	c.rt.Spawn.Lock()
	defer c.rt.Spawn.Unlock()
	_, err := c.cmd(Files{}, "kill", c.id, strconv.Itoa(int(sig)))
	if err == nil {
		return nil
	}
	st, serr := c.state()
	if serr != nil || st.Status == specs.StateStopped {
		return task.ErrNotRunning
	}
	return err
}

// State asks the runtime for the container's state.
func (c *Container) State() (*specs.State, error) {
	c.rt.Spawn.Lock()
	defer c.rt.Spawn.Unlock()
	return c.state()
}

func (c *Container) state() (*specs.State, error) {
	out, err := c.cmd(Files{}, "state", c.id)
	if err != nil {
		return nil, err
	}
	return parseState(out)
}

// parseState decodes the runtime's state command's output, an OCI state
// (runc and crun add fields of their own, ignored here).
func parseState(out []byte) (*specs.State, error) {
	var st specs.State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("decode runtime state: %w", err)
	}
	if st.ID == "" || st.Status == "" {
		return nil, fmt.Errorf("runtime state without id or status: %q", out)
	}
	return &st, nil
}

// Update applies new cgroup resources through the runtime's update command.
func (c *Container) Update(res *specs.LinuxResources) error {
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode resources: %w", err)
	}
	f, err := os.CreateTemp(c.bundle, "resources-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	c.rt.Spawn.Lock()
	defer c.rt.Spawn.Unlock()
	_, err = c.cmd(Files{}, "update", "--resources", f.Name(), c.id)
	return err
}

// Checkpoint has the runtime dump the container through CRIU, leaving it
// running (runc's and crun's checkpoint command). The caller holds the
// reaper's spawn lock.
func (c *Container) Checkpoint(imagesDir, workDir string) error {
	_, err := c.cmd(Files{}, "checkpoint", "--image-path", imagesDir, "--work-path", workDir,
		"--leave-running", "--tcp-established", "--file-locks", "--manage-cgroups-mode", "ignore", c.id)
	return err
}

// Destroy has the runtime delete the container (forced: a created init is
// killed). A container the runtime no longer knows is gone already. The
// caller holds the reaper's spawn lock.
func (c *Container) Destroy() error {
	_, err := c.cmd(Files{}, "delete", "--force", c.id)
	if err != nil && !c.exists() {
		return nil
	}
	return err
}

// exists reports whether the runtime still has a state directory for the
// container (runc and crun keep one per container under --root).
func (c *Container) exists() bool {
	_, err := os.Stat(filepath.Join(c.rt.Root, c.id))
	return !errors.Is(err, os.ErrNotExist)
}

// Run starts args in the container through the runtime's exec command,
// detached, with the init's identity (its process section with args
// replaced). The caller holds the reaper's spawn lock and waits for the
// process.
func (c *Container) Run(args []string, stdio task.IO) (task.Process, error) {
	p := c.process
	p.Args = args
	p.Terminal = stdio.ConsoleSocket != nil
	p.ConsoleSize = nil
	if p.Terminal && stdio.Width > 0 && stdio.Height > 0 {
		p.ConsoleSize = &specs.Box{Width: uint(stdio.Width), Height: uint(stdio.Height)}
	}
	data, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("encode process: %w", err)
	}
	dir, err := os.MkdirTemp(c.bundle, "exec-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	procFile, pidFile := filepath.Join(dir, "process.json"), filepath.Join(dir, "exec.pid")
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
		return nil, err
	}
	cmd := []string{"exec", "--process", procFile, "--detach", "--pid-file", pidFile}
	var console *consoleSocket
	if p.Terminal {
		if console, err = listenConsole(); err != nil {
			return nil, err
		}
		defer console.Close()
		cmd = append(cmd, "--console-socket", console.path)
	}
	cmd = append(cmd, c.id)
	if _, err := c.cmd(Files{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr}, cmd...); err != nil {
		return nil, err
	}
	pid, err := readPID(pidFile)
	if err != nil {
		return nil, err
	}
	if console != nil {
		if err := console.forward(stdio.ConsoleSocket); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = waitPID(pid)
			return nil, err
		}
	}
	return process(pid), nil
}

// process is a process Run started, a child of the shim.
type process int

func (p process) Pid() int           { return int(p) }
func (p process) Wait() (int, error) { return waitPID(int(p)) }
