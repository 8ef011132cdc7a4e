// Package nspin creates a pod's network, IPC and UTS namespaces and pins each
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
package nspin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
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
	if len(paths) == 0 {
		return errdefs.InvalidArgument("pin namespaces: no namespace requested")
	}
	seen := make(map[string]Type, len(paths))
	for t, p := range paths {
		if t.flag() == 0 {
			return errdefs.InvalidArgument("pin namespaces: unknown namespace type %q", string(t))
		}
		if p == "" || !filepath.IsAbs(p) {
			return errdefs.InvalidArgument("pin %s namespace: path %q is not absolute", t, p)
		}
		p = filepath.Clean(p)
		if other, dup := seen[p]; dup {
			return errdefs.InvalidArgument("pin namespaces: %s and %s both pinned at %s", other, t, p)
		}
		seen[p] = t
	}

	var flags int
	for _, t := range order {
		if p, ok := paths[t]; ok {
			flags |= t.flag()
			if err := os.MkdirAll(filepath.Dir(filepath.Clean(p)), 0o755); err != nil {
				return fmt.Errorf("pin %s namespace at %s: %w", t, p, err)
			}
		}
	}
	if p, ok := paths[Net]; ok {
		if err := makeSharedDir(filepath.Dir(filepath.Clean(p))); err != nil {
			return fmt.Errorf("pin %s namespace at %s: %w", Net, p, err)
		}
	}
	return onDiscardedThread(func() error { return pinOnThread(flags, paths) })
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
		if retErr == nil {
			return
		}
		for i := len(done) - 1; i >= 0; i-- {
			if err := Unpin(done[i]); err != nil {
				retErr = fmt.Errorf("%w (undo: %v)", retErr, err)
			}
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

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}
