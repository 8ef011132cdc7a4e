package pod

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/nsfs"
)

// Pinner makes and removes the mounts a pod holds on the host: the pins of
// its namespaces and its /dev/shm tmpfs, the one that lives as long as its
// IPC namespace. Both need root: the default is internal/nsfs and
// mount(2), and unit tests give a fake.
type Pinner interface {
	// Pin, PinInUserNS and Unpin are internal/nsfs's.
	Pin(pins map[nsfs.Type]string) error
	PinInUserNS(pins map[nsfs.Type]string, user nsfs.UserNS) (*nsfs.Holder, error)
	Unpin(path string) error
	// MountShm mounts a tmpfs with the given options at path, made if
	// missing, as a pod's /dev/shm.
	MountShm(path, options string) error
	// Unmount detaches the mount at path; not mounted or missing is no
	// error.
	Unmount(path string) error
}

// hostPinner is the Pinner of a real cribd.
type hostPinner struct{}

func (hostPinner) Pin(pins map[nsfs.Type]string) error { return nsfs.Pin(pins) }

func (hostPinner) PinInUserNS(pins map[nsfs.Type]string, user nsfs.UserNS) (*nsfs.Holder, error) {
	return nsfs.PinInUserNS(pins, user)
}

func (hostPinner) Unpin(path string) error { return nsfs.Unpin(path) }

func (hostPinner) MountShm(path, options string) error {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, options); err != nil {
		return fmt.Errorf("mount pod /dev/shm at %s: %w", path, err)
	}
	return nil
}

func (hostPinner) Unmount(path string) error { return unmount(path) }

// HostPinner is the Pinner of a real cribd: internal/nsfs and mount(2).
func HostPinner() Pinner { return hostPinner{} }
