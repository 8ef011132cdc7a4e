package server

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/sandbox"
)

// Version reports crib's name and version and the CRI API version.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       RuntimeName,
		RuntimeVersion:    s.opts.Version,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports RuntimeReady and NetworkReady. NetworkReady follows the CNI
// config directory without a restart. Verbose adds the info map crictl info
// shows: Options.Info (the effective config) and the network config in use.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	netReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if ok, msg := s.opts.Network.Ready(); !ok {
		netReady.Status = false
		netReady.Reason = "NetworkPluginNotReady"
		netReady.Message = "Network plugin returns error: " + msg
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			netReady,
		}},
		RuntimeHandlers: s.runtimeHandlers(),
		// Both policies are applied (sandbox/ocispec), and ContainerStatus
		// reports the identity the process got.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		resp.Info = s.verboseInfo()
	}
	return resp, nil
}

// verboseInfo is Status(verbose)'s info map: a copy of Options.Info (the
// response must not share the map) plus the network's details, read now.
func (s *Server) verboseInfo() map[string]string {
	info := make(map[string]string, len(s.opts.Info)+1)
	maps.Copy(info, s.opts.Info)
	if n, ok := s.opts.Network.(NetworkInfo); ok {
		b, err := json.Marshal(n.Info())
		if err != nil {
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		info["network"] = string(b)
	}
	return info
}

// runtimeHandlers lists the default handler ("", libcontainer in crib-shim)
// and each configured one, sorted by name, with what each can do.
func (s *Server) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	out := []*runtimeapi.RuntimeHandler{{
		Name: "",
		Features: &runtimeapi.RuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: s.opts.RecursiveReadOnlyMounts,
			UserNamespaces:          s.opts.UserNamespaces,
		},
	}}
	for _, name := range slices.Sorted(maps.Keys(s.opts.Handlers)) {
		h := s.opts.Handlers[name]
		out = append(out, &runtimeapi.RuntimeHandler{
			Name: name,
			Features: &runtimeapi.RuntimeHandlerFeatures{
				RecursiveReadOnlyMounts: h.RecursiveReadOnlyMounts,
				UserNamespaces:          h.UserNamespaces,
			},
		})
	}
	return out
}

// handlerList names the configured handlers for an error message.
func handlerList(handlers map[string]sandbox.Handler) string {
	if len(handlers) == 0 {
		return "none besides the default"
	}
	return strings.Join(slices.Sorted(maps.Keys(handlers)), ", ")
}

// RuntimeConfig reports the cgroup driver kubelet must match.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if s.opts.CgroupDriver == "systemd" {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}

// PodCIDRSetter takes kubelet's pod CIDR; the overlay's network status
// implements it (cmd/cribd/overlay.go).
type PodCIDRSetter interface {
	SetPodCIDR(cidr string) error
}

// UpdateRuntimeConfig passes kubelet's pod CIDR to the overlay manager when
// the overlay is enabled. Otherwise the network configs carry their own
// subnet and there is nothing to do.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if setter, ok := s.opts.Network.(PodCIDRSetter); ok && cidr != "" {
		if err := setter.SetPodCIDR(cidr); err != nil {
			return nil, errdefs.InvalidArgument("runtime_config.network_config.pod_cidr: %v", err)
		}
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
