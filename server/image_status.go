package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// ImageStatus reports one image by name, repo digest, ID or ID prefix. An
// unknown image is an empty response, not an error (CRI). Verbose adds an
// "info" JSON document holding the image config.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	svc, err := s.images()
	if err != nil {
		return nil, err
	}
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.InvalidArgument("image.image: an image reference or ID is required")
	}
	img, err := svc.Status(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if req.GetVerbose() {
		info, err := json.Marshal(imageInfo{ID: img.ID.CRIString(), ImageSpec: img.Config})
		if err != nil {
			return nil, fmt.Errorf("image %s: encode verbose info: %w", img.ID, err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// imageInfo is the "info" document of a verbose ImageStatus, shaped as
// containerd's so tools reading "imageSpec" work unchanged.
type imageInfo struct {
	ID        string           `json:"id"`
	ImageSpec *imgspecv1.Image `json:"imageSpec"`
}
