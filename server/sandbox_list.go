package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
)

// ListPodSandbox lists pods, filtered by ID (or ID prefix), state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	views := s.opts.Sandboxes.List(sandboxFilter(req.GetFilter()))
	items := make([]*runtimeapi.PodSandbox, 0, len(views))
	for _, v := range views {
		items = append(items, &runtimeapi.PodSandbox{
			Id:             v.ID,
			Metadata:       podMetadata(v),
			State:          podState(v),
			CreatedAt:      v.CreatedAt.UnixNano(),
			Labels:         v.Labels,
			Annotations:    v.Annotations,
			RuntimeHandler: v.RuntimeHandler,
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: items}, nil
}

func sandboxFilter(f *runtimeapi.PodSandboxFilter) sandbox.Filter {
	out := sandbox.Filter{IDPrefix: f.GetId(), Labels: f.GetLabelSelector()}
	if st := f.GetState(); st != nil {
		ready := st.GetState() == runtimeapi.PodSandboxState_SANDBOX_READY
		out.Ready = &ready
	}
	return out
}
