package container

// Image volumes (CRI Mount.image, KEP-4639): each image mount of a
// container is its image mounted read-only as a store container of its
// own (image.Service.MountImage), idmapped like the root filesystem in a
// pod user namespace, and bound into the container (ocispec). Its store
// ID is in the container's record before it is mounted, so RemoveContainer
// and start-up's recovery of a create or removal cut short find it; the
// store refuses to remove an image such a mount uses, as it does an
// image a root filesystem uses.

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/internal/beneath"
	"github.com/crib-runtime/crib/internal/cleanup"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// removeImageMounts unmounts and deletes rec's image mounts; those
// already gone are done.
func (m *Manager) removeImageMounts(rec *state.Container) error {
	for _, im := range rec.ImageMounts {
		if err := m.opts.Images.RemoveRootfs(im.ID); err != nil {
			return fmt.Errorf("remove image volume mounts[%d] (%s) of container %s: %w", im.Index, im.Image, rec.ID, err)
		}
	}
	return nil
}

// imageVolume is an image mount of a request, its image resolved.
type imageVolume struct {
	req     ocispec.ImageMount
	imageID image.ID
	// rec is what the record keeps; its ID is set once the container's
	// ID is known.
	rec state.ImageMount
}

// resolveImageMounts finds the images of the request's image mounts in
// the store: kubelet pulls them before CreateContainer, so a missing one
// is NotFound naming it. Nothing is acquired.
func (m *Manager) resolveImageMounts(spec ocispec.Config) ([]imageVolume, error) {
	reqs, err := ocispec.ImageMounts(spec)
	if err != nil || len(reqs) == 0 {
		return nil, err
	}
	out := make([]imageVolume, 0, len(reqs))
	for _, r := range reqs {
		img, err := m.opts.Images.Status(r.Image)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil, errdefs.NotFound("%s.image: image %q is not in the store: pull it before creating the container", r.Field(), r.Image)
			}
			return nil, fmt.Errorf("%s.image %q: %w", r.Field(), r.Image, err)
		}
		out = append(out, imageVolume{req: r, imageID: img.ID, rec: state.ImageMount{Index: r.Index, Image: r.Image, ImageID: img.ID.CRIString()}})
	}
	return out, nil
}

// mountImages mounts the images of container id's image volumes, each
// undo on cu right after its mount, and resolves their sub paths; it
// returns the bind sources by mount index.
//
// Each image volume has its own mount, even of one image twice: sharing
// would need a count of users, which a crash between mounting and
// counting would make wrong; a mount per volume is one directory and an
// overlay mount more, and its removal is by ID, done or not.
func (m *Manager) mountImages(cu *cleanup.Cleanup, id string, vols []imageVolume, ids image.IDMappings) (map[int]string, error) {
	if len(vols) == 0 {
		return nil, nil
	}
	out := make(map[int]string, len(vols))
	for _, v := range vols {
		mnt, err := m.opts.Images.MountImage(v.rec.ID, v.imageID, state.ImageMountName(id, v.rec.Index), ids)
		if err != nil {
			return nil, fmt.Errorf("%s.image %q: %w", v.req.Field(), v.req.Image, err)
		}
		storeID := v.rec.ID
		cu.Add("unmount image volume", func(context.Context) error { return m.opts.Images.RemoveRootfs(storeID) })
		src, err := imageSubPath(mnt, v.req)
		if err != nil {
			return nil, err
		}
		out[v.req.Index] = src
	}
	return out, nil
}

// imageSubPath is the host path of v's image_sub_path in its image,
// mounted at mnt: symlinks are followed only while they stay in the image
// (the image cannot change under the container, being read-only, so the
// path checked is the path bound).
func imageSubPath(mnt string, v ocispec.ImageMount) (string, error) {
	if v.SubPath == "" {
		return mnt, nil
	}
	src, err := beneath.Resolve(mnt, v.SubPath)
	switch {
	case err == nil:
		return src, nil
	case errors.Is(err, os.ErrNotExist):
		return "", errdefs.InvalidArgument("%s.image_sub_path %q does not exist in image %q", v.Field(), v.SubPath, v.Image)
	case errors.Is(err, beneath.ErrEscapes):
		return "", errdefs.InvalidArgument("%s.image_sub_path %q leads out of image %q (through an absolute symlink, or one climbing with ..)", v.Field(), v.SubPath, v.Image)
	case errors.Is(err, beneath.ErrSymlink):
		return "", errdefs.InvalidArgument("%s.image_sub_path %q passes a symlink in image %q, which this kernel (no openat2) cannot follow safely", v.Field(), v.SubPath, v.Image)
	case errors.Is(err, unix.ENOTDIR):
		return "", errdefs.InvalidArgument("%s.image_sub_path %q: %v in image %q", v.Field(), v.SubPath, err, v.Image)
	}
	return "", fmt.Errorf("%s.image_sub_path %q in image %q: %w", v.Field(), v.SubPath, v.Image, err)
}
