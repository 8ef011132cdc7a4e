package sandbox

import (
	"errors"

	"golang.org/x/sys/unix"
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
