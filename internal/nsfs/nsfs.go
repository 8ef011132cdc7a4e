// Package nsfs creates a pod's network, IPC and UTS namespaces and pins each
// by a bind mount onto a file, before any process runs in them. A pinned
// namespace lives until its pin is unmounted and no process uses it.
//
// The namespaces are made on a goroutine locked to its OS thread and never
// unlocked, so the Go runtime throws the thread away afterwards instead of
// handing a thread in foreign namespaces to other goroutines (the approach of
// containerd's pkg/netns and CNI's pkg/ns). Never the main thread, though,
// which Go parks rather than ends (see onDiscardedThread).
//
// The directory holding a network namespace pin is set up as `ip netns add`
// sets up /var/run/netns: a bind mount of the directory onto itself, made
// shared and recursive. Pins made under it then propagate to mount
// namespaces created later, and unmounting a pin here unmounts those copies
// too, so the namespace is freed. `ip netns list` and `ip netns exec` see
// pins made in /var/run/netns.
package nsfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

// Type is a namespace kind that can be pinned. Its value is the namespace's
// file name under /proc/<pid>/ns.
type Type string

// The namespace types Pin makes.
const (
	Net Type = "net"
	IPC Type = "ipc"
	UTS Type = "uts"
)

// User is the user namespace PinInUserNS makes and pins besides the others.
const User Type = "user"

// order is the fixed order in which namespaces are pinned (and reported).
var order = []Type{Net, IPC, UTS}

// flag returns the unshare(2) flag for t, or 0 for an unknown type.
func (t Type) flag() int {
	switch t {
	case Net:
		return unix.CLONE_NEWNET
	case IPC:
		return unix.CLONE_NEWIPC
	case UTS:
		return unix.CLONE_NEWUTS
	}
	return 0
}

// Pin creates one new namespace of each type in paths and bind mounts it onto
// that path. The file is created (0 bytes, like `ip netns add`; it must not
// exist) and missing parent directories are made. The parent directory of the
// Net path is made a shared mount point as iproute2 does (see the package
// comment); other parents are left as they are.
//
// Pin is all or nothing: on failure it unmounts and removes every pin it made
// and returns an error naming the path that failed.
func Pin(paths map[Type]string) error {
	flags, err := prepare(paths)
	if err != nil {
		return err
	}
	return onDiscardedThread(func() error { return pinOnThread(flags, paths) })
}

// UserNS describes the user namespace PinInUserNS makes.
type UserNS struct {
	// Path is where the user namespace is pinned.
	Path string
	// UIDMappings and GIDMappings are written to its uid_map and gid_map.
	UIDMappings, GIDMappings []state.IDMapping
	// Holder is a command that waits until end of file on its stdin or
	// until it is killed (crib-pause -hold). A process with more than one
	// thread, such as cribd, cannot enter a new user namespace itself, so
	// the holder is born in the new namespaces instead and they are pinned
	// from its /proc entry.
	Holder []string
}

// PinInUserNS is Pin for namespaces owned by a new user namespace, which is
// pinned at user.Path too: root in that user namespace, and only there, has
// capabilities over them. setgroups(2) stays allowed in it, since container
// processes set their supplementary groups. Like Pin it is all or nothing.
//
// It returns the holder, still running in the namespaces, for callers that
// want a /proc path into them (libcontainer reads a user namespace's
// mappings from /proc/<pid>/ directly, but forks into a pinned one); the
// caller must Stop it.
func PinInUserNS(paths map[Type]string, user UserNS) (_ *Holder, retErr error) {
	flags, err := prepare(paths)
	if err != nil {
		return nil, err
	}
	if user.Path == "" || !filepath.IsAbs(user.Path) {
		return nil, errdefs.InvalidArgument("pin user namespace: path %q is not absolute", user.Path)
	}
	if len(user.UIDMappings) == 0 || len(user.GIDMappings) == 0 {
		return nil, errdefs.InvalidArgument("pin user namespace at %s: no UID or GID mapping", user.Path)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(user.Path)), 0o755); err != nil {
		return nil, fmt.Errorf("pin user namespace at %s: %w", user.Path, err)
	}
	holder, err := StartInUserNS(user.Holder, user.UIDMappings, user.GIDMappings, flags)
	if err != nil {
		return nil, fmt.Errorf("pin user namespace at %s: %w", user.Path, err)
	}
	defer func() {
		if retErr != nil {
			holder.Stop()
		}
	}()

	var done []string
	defer func() {
		if retErr != nil {
			retErr = unpinAll(done, retErr)
		}
	}()
	pin := func(t Type, p string) error {
		p = filepath.Clean(p)
		created, err := bindOnto(holder.NSPath(t), p)
		if created {
			done = append(done, p)
		}
		if err != nil {
			return fmt.Errorf("pin %s namespace at %s: %w", t, p, err)
		}
		return nil
	}
	if err := pin(User, user.Path); err != nil {
		return nil, err
	}
	for _, t := range order {
		if p, ok := paths[t]; ok {
			if err := pin(t, p); err != nil {
				return nil, err
			}
		}
	}
	if p, ok := paths[Net]; ok {
		if err := onDiscardedThread(func() error { return loopbackUpIn(p) }); err != nil {
			return nil, fmt.Errorf("pin namespaces: bring up lo in %s: %w", p, err)
		}
	}
	return holder, nil
}

// Holder is a process born in a new user namespace (and any other new
// namespaces asked for), kept only while its namespaces are used.
type Holder struct {
	cmd   *exec.Cmd
	stdin io.Closer
	once  sync.Once
}

// StartInUserNS runs argv, a command that waits until end of file on its
// stdin (crib-pause -hold) or until it is killed, in a new user namespace
// with the given mappings (setgroups allowed) and in new namespaces of the
// unshare(2) flags, which that user namespace owns. Its stdin is a pipe
// only this process writes to, so a holder also ends when its starter dies
// before it could stop it. (Not PR_SET_PDEATHSIG: that fires when the
// forking thread ends, and Go ends the threads nsfs locks.)
func StartInUserNS(argv []string, uids, gids []state.IDMapping, flags int) (*Holder, error) {
	if len(argv) == 0 {
		return nil, errdefs.InvalidArgument("start a process in a new user namespace: no command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 unix.CLONE_NEWUSER | uintptr(flags),
		UidMappings:                procIDMaps(uids),
		GidMappings:                procIDMaps(gids),
		GidMappingsEnableSetgroups: true,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s in a new user namespace: %w", argv[0], err)
	}
	if err := cmd.Start(); err != nil {
		stdin.Close()
		return nil, fmt.Errorf("start %s in a new user namespace: %w", argv[0], err)
	}
	return &Holder{cmd: cmd, stdin: stdin}, nil
}

// PID is the holder's process ID.
func (h *Holder) PID() int { return h.cmd.Process.Pid }

// NSPath is the /proc path of the holder's namespace of type t.
func (h *Holder) NSPath(t Type) string {
	return fmt.Sprintf("/proc/%d/ns/%s", h.cmd.Process.Pid, t)
}

// Stop ends the holder and reaps it. It may be called more than once, and
// on a nil Holder.
func (h *Holder) Stop() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		_ = h.stdin.Close()
		_ = h.cmd.Process.Kill()
		_ = h.cmd.Wait()
	})
}

// prepare validates paths for Pin and PinInUserNS, makes their parent
// directories and returns the unshare(2) flags for them.
func prepare(paths map[Type]string) (int, error) {
	if len(paths) == 0 {
		return 0, errdefs.InvalidArgument("pin namespaces: no namespace requested")
	}
	seen := make(map[string]Type, len(paths))
	for t, p := range paths {
		if t.flag() == 0 {
			return 0, errdefs.InvalidArgument("pin namespaces: unknown namespace type %q", string(t))
		}
		if p == "" || !filepath.IsAbs(p) {
			return 0, errdefs.InvalidArgument("pin %s namespace: path %q is not absolute", t, p)
		}
		p = filepath.Clean(p)
		if other, dup := seen[p]; dup {
			return 0, errdefs.InvalidArgument("pin namespaces: %s and %s both pinned at %s", other, t, p)
		}
		seen[p] = t
	}

	var flags int
	for _, t := range order {
		if p, ok := paths[t]; ok {
			flags |= t.flag()
			if err := os.MkdirAll(filepath.Dir(filepath.Clean(p)), 0o755); err != nil {
				return 0, fmt.Errorf("pin %s namespace at %s: %w", t, p, err)
			}
		}
	}
	if p, ok := paths[Net]; ok {
		if err := makeSharedDir(filepath.Dir(filepath.Clean(p))); err != nil {
			return 0, fmt.Errorf("pin %s namespace at %s: %w", Net, p, err)
		}
	}
	return flags, nil
}

func procIDMaps(in []state.IDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, 0, len(in))
	for _, m := range in {
		out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// unpinAll undoes the pins in done, newest first, adding any failure to err.
func unpinAll(done []string, err error) error {
	for i := len(done) - 1; i >= 0; i-- {
		if uerr := Unpin(done[i]); uerr != nil {
			err = fmt.Errorf("%w (undo: %v)", err, uerr)
		}
	}
	return err
}

// onDiscardedThread runs fn on a goroutine locked to an OS thread that is
// never unlocked, so Go ends the thread when fn returns and no other
// goroutine ever runs in the namespaces fn moved it into.
//
// Go does not end the main thread (it parks it forever instead), so fn must
// not run there: its namespaces would stay alive as long as the process and
// show as the process's own in /proc/<pid>/ns. If the goroutine lands on the
// main thread, it keeps that thread locked, and so busy, while a second
// goroutine, which therefore lands elsewhere, runs fn; then it unlocks the
// untouched main thread.
func onDiscardedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			err := onDiscardedThread(fn)
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		errc <- fn()
		// Return still locked: Go ends this thread.
	}()
	return <-errc
}

// pinOnThread runs on a locked thread: it moves the thread into new
// namespaces, then pins them in order, undoing every pin made if one fails.
func pinOnThread(flags int, paths map[Type]string) (retErr error) {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("pin namespaces: unshare: %w", err)
	}
	tid := unix.Gettid()
	if flags&unix.CLONE_NEWNET != 0 {
		// A new network namespace starts with lo down; pods expect
		// localhost to work (containerd and CRI-O run the loopback plugin
		// for this). The thread is inside the namespace, so do it here.
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("pin namespaces: bring up lo: %w", err)
		}
	}

	var done []string
	defer func() {
		if retErr != nil {
			retErr = unpinAll(done, retErr)
		}
	}()
	for _, t := range order {
		p, ok := paths[t]
		if !ok {
			continue
		}
		p = filepath.Clean(p)
		src := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, t)
		created, err := bindOnto(src, p)
		if created {
			done = append(done, p)
		}
		if err != nil {
			return fmt.Errorf("pin %s namespace at %s: %w", t, p, err)
		}
	}
	return nil
}

// bindOnto creates target (it must not exist) and bind mounts src onto it.
// created reports whether target was created, so the caller can remove it.
func bindOnto(src, target string) (created bool, err error) {
	fd, err := unix.Open(target, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, errdefs.AlreadyExists("create: file exists")
		}
		return false, fmt.Errorf("create: %w", err)
	}
	unix.Close(fd)
	if err := unix.Mount(src, target, "none", unix.MS_BIND, ""); err != nil {
		return true, fmt.Errorf("bind mount %s: %w", src, err)
	}
	return true, nil
}

// makeSharedDir does what `ip netns add` does to /var/run/netns: make dir a
// shared, recursive mount point, bind mounting it onto itself first if it is
// not a mount point yet. Like iproute2 it holds an exclusive flock on dir
// meanwhile, so that concurrent callers (crib or ip) never stack binds; if the
// lock cannot be taken it proceeds anyway.
func makeSharedDir(dir string) error {
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		defer unix.Close(fd)
		if unix.Flock(fd, unix.LOCK_EX) == nil {
			defer unix.Flock(fd, unix.LOCK_UN) //nolint:errcheck // closing drops it anyway
		}
	}
	bound := false
	for {
		err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		// EINVAL: dir is not a mount point yet.
		if !errors.Is(err, unix.EINVAL) || bound {
			return fmt.Errorf("make %s a shared mount: %w", dir, err)
		}
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount %s onto itself: %w", dir, err)
		}
		bound = true
	}
}

// Unpin unmounts the pin at path (lazily, so a namespace still in use stays
// alive for its users) and removes the file. It is idempotent: a path that is
// not mounted or does not exist is not an error.
func Unpin(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin %s: unmount: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	return nil
}

// IsPinned reports whether path is a namespace pin: a mount of nsfs.
func IsPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// loopbackUpIn moves the calling thread, which must be one that is thrown
// away afterwards, into the network namespace pinned at path and sets lo up.
func loopbackUpIn(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter: %w", err)
	}
	return loopbackUp()
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}
