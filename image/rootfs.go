package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/idtools"
	"go.podman.io/storage/types"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/state"
)

// IDMappings are the user namespace mappings of the pod a root filesystem
// is made for; empty for the host's user namespace.
type IDMappings struct {
	UIDs, GIDs []state.IDMapping
}

// CreateRootfs makes container id's writable layer on top of image
// imageID and mounts it; it returns the mounted root filesystem. name is
// recorded in the store so that removing a used image names the container.
// On failure nothing is left in the store.
//
// With ids, the image's layers are mounted through idmapped mounts of the
// pod's user namespace, so its root owns the files that the host's root
// owns on disk, and the writable layer belongs to the pod's root; nothing
// is copied or chowned (a kernel without idmapped overlay layers makes the
// store fall back to a chowned copy of the image).
func (s *Service) CreateRootfs(id string, imageID ID, name string, ids IDMappings) (string, error) {
	return s.createMounted(id, imageID, name, ids, false)
}

// MountImage mounts image imageID read-only for an image volume (CRI
// Mount.image) as store container id, and returns the mount. It is a
// root filesystem in all but its read-only overlay, and shares its ways:
// name is recorded in the store (removing the image while mounted is
// refused naming it), ids idmap it for a pod user namespace, and
// RemoveRootfs(id) unmounts and deletes it. A store container of its own
// per volume, rather than the store's shared, reference-counted
// MountImage, lets a removal cut short by a crash be finished without
// counting: the ID is either there or gone.
func (s *Service) MountImage(id string, imageID ID, name string, ids IDMappings) (string, error) {
	return s.createMounted(id, imageID, name, ids, true)
}

// createMounted makes store container id of image imageID and mounts it,
// read-only if readOnly; see CreateRootfs.
func (s *Service) createMounted(id string, imageID ID, name string, ids IDMappings, readOnly bool) (string, error) {
	s.layers.enter() // the layer exists a moment before its container record
	defer s.layers.leave(false, s.sweepAfterFailure)
	var opts *storage.ContainerOptions
	if len(ids.UIDs) > 0 || readOnly {
		opts = &storage.ContainerOptions{}
	}
	if len(ids.UIDs) > 0 {
		opts.IDMappingOptions = types.IDMappingOptions{UIDMap: storeIDMap(ids.UIDs), GIDMap: storeIDMap(ids.GIDs)}
	}
	if readOnly {
		// The overlay driver then mounts the image's layers (and the
		// empty layer of this container) as lower layers only, with no
		// upper layer to write to.
		opts.MountOpts = []string{"ro"}
	}
	if _, err := s.store.CreateContainer(id, []string{name}, imageID.StoreKey(), "", "", opts); err != nil {
		return "", fmt.Errorf("create layer for container %s: %w", id, err)
	}
	mnt, err := s.store.Mount(id, "")
	if err == nil && len(ids.UIDs) > 0 {
		mnt, err = s.bindReachable(id, mnt, ids)
	}
	if err != nil {
		if rerr := s.RemoveRootfs(id); rerr != nil {
			err = fmt.Errorf("%w (and removing the layer: %v)", err, rerr)
		}
		return "", fmt.Errorf("mount root filesystem of container %s: %w", id, err)
	}
	s.fsInvalidate()
	s.layerUsage.add(id)
	return mnt, nil
}

// reachableDir holds binds of the root filesystems of containers in pod
// user namespaces. The store keeps a mounted layer below a directory only
// the host's root may enter, and the container's root, someone else on the
// host, must still reach its root filesystem by path (libcontainer mounts
// it from inside the user namespace). So this directory and its parents
// can be searched by all, and each bind, at <id>/rootfs, sits in a
// directory only the pod's root (and the host's) may enter.
func (s *Service) reachableDir() string { return filepath.Join(s.opts.RunRoot, "userns-rootfs") }

// bindReachable binds container id's mounted root filesystem mnt under
// reachableDir, where the host IDs of the pod's root (ids) reach it, and
// returns the bind.
func (s *Service) bindReachable(id, mnt string, ids IDMappings) (string, error) {
	dir := filepath.Join(s.reachableDir(), id)
	target := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(s.reachableDir(), 0o711); err != nil {
		return "", fmt.Errorf("bind root filesystem where its pod reaches it: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("bind root filesystem where its pod reaches it: %w", err)
	}
	uid, _ := state.HostID(ids.UIDs, 0) // the server requires container ID 0 mapped
	gid, _ := state.HostID(ids.GIDs, 0)
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return "", fmt.Errorf("give %s to the pod's root: %w", dir, err)
	}
	if err := os.Mkdir(target, 0o700); err != nil {
		return "", fmt.Errorf("bind root filesystem where its pod reaches it: %w", err)
	}
	if err := unix.Mount(mnt, target, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind root filesystem at %s: %w", target, err)
	}
	if err := unix.Mount("", target, "", unix.MS_PRIVATE, ""); err != nil {
		return "", fmt.Errorf("make %s private: %w", target, err)
	}
	return target, nil
}

// unbindReachable undoes bindReachable; no bind is not an error. It only
// unmounts and removes empty directories, never a tree: a bind it failed
// to unmount must not be emptied.
func (s *Service) unbindReachable(id string) error {
	dir := filepath.Join(s.reachableDir(), id)
	target := filepath.Join(dir, "rootfs")
	for _, p := range []string{target, dir} {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unbind root filesystem at %s: %w", p, err)
		}
	}
	for _, p := range []string{target, dir} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// RemoveRootfs unmounts and deletes container id's writable layer. An
// unknown container is not an error: a removal cut short by a crash is
// finished by calling it again, whichever step the crash came after.
func (s *Service) RemoveRootfs(id string) error {
	if err := s.unbindReachable(id); err != nil {
		return err
	}
	if _, err := s.store.Unmount(id, true); err != nil && !rootfsGone(err) {
		return fmt.Errorf("unmount root filesystem of container %s: %w", id, err)
	}
	if err := s.store.DeleteContainer(id); err != nil && !rootfsGone(err) {
		return fmt.Errorf("remove writable layer of container %s: %w", id, err)
	}
	s.fsInvalidate()
	s.layerUsage.forget(id)
	return nil
}

// rootfsGone reports whether err is the store's way of saying a container
// or its layer no longer exists. The library has several: DeleteContainer
// answers ErrNotAContainer for an ID it does not know (not
// ErrContainerUnknown), Unmount ErrLayerUnknown.
func rootfsGone(err error) bool {
	return errors.Is(err, storage.ErrContainerUnknown) || errors.Is(err, storage.ErrNotAContainer) ||
		errors.Is(err, storage.ErrLayerUnknown)
}

// Rootfs is a writable layer in the store (or what is left of one).
type Rootfs struct {
	// ID is the ID CreateRootfs was given.
	ID string
	// Names are the names CreateRootfs recorded; none for a bind under
	// reachableDir whose store container is gone.
	Names []string
}

// Rootfses lists the root filesystems in the store, and the binds under
// reachableDir of container IDs the store no longer has (a RemoveRootfs
// cut short), so that cribd can remove at start those no record owns.
func (s *Service) Rootfses() ([]Rootfs, error) {
	cs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list the store's containers: %w", err)
	}
	out := make([]Rootfs, 0, len(cs))
	known := make(map[string]bool, len(cs))
	for _, c := range cs {
		out = append(out, Rootfs{ID: c.ID, Names: c.Names})
		known[c.ID] = true
	}
	entries, err := os.ReadDir(s.reachableDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list %s: %w", s.reachableDir(), err)
	}
	for _, e := range entries {
		if !known[e.Name()] {
			out = append(out, Rootfs{ID: e.Name()})
		}
	}
	return out, nil
}

func storeIDMap(in []state.IDMapping) []idtools.IDMap {
	out := make([]idtools.IDMap, 0, len(in))
	for _, m := range in {
		out = append(out, idtools.IDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
	}
	return out
}

// WriteRootfsDiff writes the changes container id made to its image's files
// (its writable layer, deletions as whiteout files) to w as an uncompressed
// tar: the rootfs-diff.tar of a checkpoint archive, as the storage library
// exports a layer.
func (s *Service) WriteRootfsDiff(id string, w io.Writer) error {
	c, err := s.store.Container(id)
	if err != nil {
		return fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	uncompressed := archive.Uncompressed
	rc, err := s.store.Diff("", c.LayerID, &storage.DiffOptions{Compression: &uncompressed})
	if err != nil {
		return fmt.Errorf("changes of container %s: %w", id, err)
	}
	_, err = io.Copy(w, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("changes of container %s: %w", id, err)
	}
	return nil
}
