package image

import (
	"errors"
	"fmt"
	"strings"

	"go.podman.io/storage"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

// errdefsNotFound lets notFoundErr match errdefs.ErrNotFound.
var errdefsNotFound = errdefs.ErrNotFound

// Remove deletes the image ref names (as Status resolves it) with all its
// names, as containerd does. An unknown image is not an error. An image a
// container uses is a FailedPrecondition naming the containers.
func (s *Service) Remove(ref string) error {
	img, err := s.resolve(ref)
	if errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := s.store.DeleteImage(img.ID, true); err != nil {
		// A concurrent removal got there first (the ID may then read as
		// unknown, or as "not an image" while the store settles).
		if imageGone(err) || errors.Is(err, storage.ErrLayerUnknown) {
			return nil
		}
		if errors.Is(err, storage.ErrImageUsedByContainer) {
			return errdefs.FailedPrecondition("image %q (%s) is used by container(s) %s", ref, img.ID, s.containersUsing(img.ID))
		}
		return fmt.Errorf("remove image %q (%s): %w", ref, img.ID, err)
	}
	s.forget(img.ID)
	s.fsInvalidate()
	s.log.WithField("id", img.ID).WithField("names", img.Names).Info("removed image")
	return nil
}

// containersUsing names the store's containers made from image id.
func (s *Service) containersUsing(id string) string {
	cs, err := s.store.Containers()
	if err != nil {
		return "(cannot list: " + err.Error() + ")"
	}
	var names []string
	for _, c := range cs {
		if c.ImageID == id {
			n := c.ID
			if len(c.Names) > 0 {
				n = c.Names[0] + " (" + c.ID + ")"
				if ctr, index, ok := state.ParseImageMountName(c.Names[0]); ok {
					n = fmt.Sprintf("%s (as its image volume mounts[%d])", ctr, index)
				}
			}
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}
