// Package beneath opens and creates files below a trusted directory without
// following symlinks. Container log paths are chosen by the CRI client but
// written by root: a symlink planted in the pod's log directory (as the log
// file or as a directory on its path) must not redirect crib's writes
// anywhere else on the host. A lexical check of the path cannot see that;
// only resolving each component with the kernel's help can.
//
// Paths are resolved with openat2(2) and RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS;
// on a kernel without openat2 (before 5.6) each component is opened with
// O_NOFOLLOW instead, which refuses the same symlinks.
package beneath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned when a component of the path is a symlink.
var ErrSymlink = errors.New("is a symlink")

// ErrEscapes is returned for a path that leaves the root lexically.
var ErrEscapes = errors.New("leaves the directory")

// ErrNotRegular is returned by OpenLog for an existing file that is not a
// regular file with one link (a FIFO, a device, a hard link to another file).
var ErrNotRegular = errors.New("is not a regular file of its own")

// resolveFlags refuse any symlink and any escape from the root.
const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS

// split checks rel and returns its components.
func split(rel string) ([]string, error) {
	if rel == "" || filepath.IsAbs(rel) {
		return nil, fmt.Errorf("%q must be a relative path: %w", rel, ErrEscapes)
	}
	clean := filepath.Clean(rel)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, fmt.Errorf("%q: %w", rel, ErrEscapes)
	}
	return strings.Split(clean, "/"), nil
}

// openAt opens name (one component or a relative path) beneath dirfd
// without following symlinks.
func openAt(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
			Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: resolveFlags,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ENOSYS):
			return openAtNoFollow(dirfd, name, flags, mode)
		case errors.Is(err, unix.ELOOP):
			return -1, ErrSymlink
		case errors.Is(err, unix.EXDEV):
			return -1, ErrEscapes
		}
		return -1, err
	}
}

// openAtNoFollow is openAt for kernels without openat2: one component at a
// time, each with O_NOFOLLOW.
func openAtNoFollow(dirfd int, name string, flags int, mode uint32) (int, error) {
	parts, err := split(name)
	if err != nil {
		return -1, err
	}
	cur := dirfd
	for i, p := range parts {
		f := unix.O_PATH | unix.O_DIRECTORY
		if i == len(parts)-1 {
			f = flags
		}
		fd, err := unix.Openat(cur, p, f|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err != nil && (errors.Is(err, unix.ELOOP) || (errors.Is(err, unix.ENOTDIR) && isSymlinkAt(cur, p))) {
			err = ErrSymlink
		}
		if cur != dirfd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = fd
	}
	return cur, nil
}

func isSymlinkAt(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// openRoot opens the trusted root directory. The root itself is the
// caller's (kubelet's pod log directory) and may be reached through
// symlinks; only what lies beneath it is resolved strictly.
func openRoot(root string) (int, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	return fd, nil
}

// MkdirAll creates the directory rel beneath root, and any missing parents,
// with mode perm; it never follows a symlink. An existing directory is
// fine; a symlink on the way fails with ErrSymlink and creates nothing past
// it.
func MkdirAll(root, rel string, perm os.FileMode) error {
	parts, err := split(rel)
	if err != nil {
		return err
	}
	dirfd, err := openRoot(root)
	if err != nil {
		return err
	}
	defer func() { unix.Close(dirfd) }()
	for i, p := range parts {
		err := unix.Mkdirat(dirfd, p, uint32(perm.Perm()))
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mkdir %s: %w", filepath.Join(parts[:i+1]...), err)
		}
		fd, err := openAt(dirfd, p, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(parts[:i+1]...), err)
		}
		unix.Close(dirfd)
		dirfd = fd
	}
	return nil
}

// OpenLog opens the file rel beneath root for appending, creating it with
// mode perm (and its missing parent directories with 0755) if needed. No
// symlink is followed: one anywhere on the path fails with ErrSymlink. An
// existing file must be a regular file with a single link (ErrNotRegular
// otherwise), so a FIFO cannot block the caller and a hard link cannot
// stand in for a file elsewhere.
func OpenLog(root, rel string, perm os.FileMode) (*os.File, error) {
	parts, err := split(rel)
	if err != nil {
		return nil, err
	}
	if len(parts) > 1 {
		if err := MkdirAll(root, filepath.Join(parts[:len(parts)-1]...), 0o755); err != nil {
			return nil, err
		}
	}
	dirfd, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	name := filepath.Join(parts...)
	// O_NONBLOCK: opening a FIFO for writing must not wait for a reader;
	// it has no effect on a regular file.
	fd, err := openAt(dirfd, name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK, uint32(perm.Perm()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_APPEND); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, name)), nil
}

// Resolve returns the host path of rel beneath root, with the symlinks on
// the way resolved, as long as each stays beneath root: an absolute
// symlink, or a ".." that climbs out of root (in rel or in a symlink),
// fails with ErrEscapes. rel must exist (an error matching
// os.ErrNotExist otherwise). The result names no symlink, so a caller
// that hands it on (as a bind mount's source) hands on what was checked;
// that holds as long as nothing beneath root can change, as in a
// read-only image. On a kernel without openat2 every symlink is refused
// (ErrSymlink).
func Resolve(root, rel string) (string, error) {
	if _, err := split(rel); err != nil {
		return "", err
	}
	dirfd, err := openRoot(root)
	if err != nil {
		return "", err
	}
	defer unix.Close(dirfd)
	fd, err := openBeneath(dirfd, filepath.Clean(rel))
	if err != nil {
		return "", fmt.Errorf("%s: %w", rel, err)
	}
	defer unix.Close(fd)
	rootPath, err := fdPath(dirfd)
	if err != nil {
		return "", err
	}
	path, err := fdPath(fd)
	if err != nil {
		return "", err
	}
	// The kernel kept the walk beneath root; this only guards against a
	// /proc that says otherwise.
	if !strings.HasPrefix(path, strings.TrimSuffix(rootPath, "/")+"/") {
		return "", fmt.Errorf("%s resolved to %s, outside %s: %w", rel, path, rootPath, ErrEscapes)
	}
	return path, nil
}

// openBeneath opens name beneath dirfd with O_PATH, following symlinks
// that stay beneath it.
func openBeneath(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
			Flags: uint64(unix.O_PATH | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ENOSYS):
			return openAtNoFollow(dirfd, name, unix.O_PATH, 0)
		case errors.Is(err, unix.EXDEV):
			return -1, ErrEscapes
		case errors.Is(err, unix.ENOENT):
			return -1, os.ErrNotExist
		}
		return -1, err
	}
}

// fdPath is the path the kernel knows open file fd by.
func fdPath(fd int) (string, error) {
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", fmt.Errorf("path of an open file: %w", err)
	}
	return p, nil
}
