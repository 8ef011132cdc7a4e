package pod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/nsfs"
)

// RecursiveReadOnlySupported reports whether this kernel can make a bind
// mount read-only recursively (mount_setattr(2) with AT_RECURSIVE, Linux
// 5.12), which the OCI "rro" option (CRI recursive_read_only) needs. The
// probe passes a bad descriptor: a kernel with the call answers EBADF,
// one without ENOSYS.
func RecursiveReadOnlySupported() bool {
	err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	return !errors.Is(err, unix.ENOSYS)
}

// UserNamespacesSupported checks that pods can have user namespaces of
// their own on this node: the pod's root, no one on the host, must be able
// to search its way from / down to rootDir and runDir (which hold its root
// filesystem, pause's and its pinned namespaces), and the kernel must make
// idmapped mounts of rootDir's file system. It returns why not, or nil.
func UserNamespacesSupported(rootDir, runDir string, holder []string) error {
	for _, d := range []string{rootDir, runDir} {
		if err := searchableByAll(d); err != nil {
			return err
		}
	}
	return IDMappedMountsSupported(rootDir, holder)
}

// searchableByAll checks that dir and each directory above it let others
// search them (o+x).
func searchableByAll(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is mode %#o: a pod's root could not reach its files below it (chmod o+x %s)", d, st.Mode().Perm(), d)
		}
		if d == "/" {
			return nil
		}
	}
}

// IDMappedMountsSupported checks that this kernel can make idmapped mounts
// of dir's file system (mount_setattr(2) with MOUNT_ATTR_IDMAP, Linux 5.12,
// and a file system that allows it), which pods in their own user namespace
// need for their volumes and their root filesystem's layers. holder is a
// command that waits (crib-pause -hold, see nsfs.StartInUserNS), run
// briefly in a user namespace to map through. It returns why not, or nil.
func IDMappedMountsSupported(dir string, holder []string) error {
	probe := []state.IDMapping{{ContainerID: 0, HostID: 1 << 30, Size: 65536}}
	h, err := nsfs.StartInUserNS(holder, probe, probe, 0)
	if err != nil {
		return err
	}
	defer h.Stop()
	userns, err := os.Open(h.NSPath(nsfs.User))
	if err != nil {
		return err
	}
	defer userns.Close()
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", dir, err)
	}
	defer unix.Close(tree) // the clone is never attached: closing it frees it
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("idmapped mount of %s: %w", dir, err)
	}
	return nil
}
