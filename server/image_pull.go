package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/image"
)

// PullImage pulls an image with the request's credentials (else the
// configured auth file) and returns its ID.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	svc, err := s.images()
	if err != nil {
		return nil, err
	}
	name := req.GetImage().GetImage()
	if name == "" {
		return nil, errdefs.InvalidArgument("image.image: an image reference is required")
	}
	a := req.GetAuth()
	id, err := svc.Pull(ctx, name, image.Auth{
		Username:      a.GetUsername(),
		Password:      a.GetPassword(),
		Auth:          a.GetAuth(),
		IdentityToken: a.GetIdentityToken(),
		RegistryToken: a.GetRegistryToken(),
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: id.CRIString()}, nil
}
