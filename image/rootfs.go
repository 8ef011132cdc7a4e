package image

import (
	"errors"
	"fmt"

	"go.podman.io/storage"
)

// CreateRootfs makes container id's writable layer on top of image
// imageID and mounts it; it returns the mounted root filesystem. name is
// recorded in the store so that removing a used image names the container.
// On failure nothing is left in the store.
func (s *Service) CreateRootfs(id string, imageID ID, name string) (string, error) {
	s.layers.enter() // the layer exists a moment before its container record
	defer s.layers.leave(false, s.sweepAfterFailure)
	if _, err := s.store.CreateContainer(id, []string{name}, imageID.StoreKey(), "", "", nil); err != nil {
		return "", fmt.Errorf("create writable layer for container %s: %w", id, err)
	}
	mnt, err := s.store.Mount(id, "")
	if err != nil {
		if derr := s.store.DeleteContainer(id); derr != nil && !errors.Is(derr, storage.ErrContainerUnknown) {
			err = fmt.Errorf("%w (and removing the layer: %v)", err, derr)
		}
		return "", fmt.Errorf("mount root filesystem of container %s: %w", id, err)
	}
	s.fsInvalidate()
	return mnt, nil
}

// RemoveRootfs unmounts and deletes container id's writable layer. An
// unknown container is not an error.
func (s *Service) RemoveRootfs(id string) error {
	if _, err := s.store.Unmount(id, true); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) {
		return fmt.Errorf("unmount root filesystem of container %s: %w", id, err)
	}
	if err := s.store.DeleteContainer(id); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
		return fmt.Errorf("remove writable layer of container %s: %w", id, err)
	}
	s.fsInvalidate()
	return nil
}
