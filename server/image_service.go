package server

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/image"
)

// ImageService is what the CRI image RPCs need from crib's image service
// (image.Service implements it).
type ImageService interface {
	Pull(ctx context.Context, name string, auth image.Auth) (image.ID, error)
	Status(ref string) (*image.Image, error)
	List(filter string) ([]*image.Image, error)
	Remove(ref string) error
	FsInfo() (image.FsInfo, error)
	WritableLayerUsage(id string) (image.Usage, bool)
}

// images returns the configured image service, or an Unimplemented error.
func (s *Server) images() (ImageService, error) {
	if s.opts.Images == nil {
		return nil, fmt.Errorf("image service: %w", errdefs.ErrUnimplemented)
	}
	return s.opts.Images, nil
}

// criImage converts the image service's view to the CRI's.
func criImage(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id:          img.ID.CRIString(),
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Username:    img.Username,
		Pinned:      img.Pinned,
	}
	if img.UID != nil {
		out.Uid = &runtimeapi.Int64Value{Value: *img.UID}
	}
	if out.RepoTags == nil {
		out.RepoTags = []string{}
	}
	if out.RepoDigests == nil {
		out.RepoDigests = []string{}
	}
	return out
}
