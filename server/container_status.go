package server

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
)

// ContainerStatus reports one container; verbose adds its pid, rootfs,
// shim state and OCI spec.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	v, err := s.opts.Sandboxes.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: containerStatus(v)}
	if req.GetVerbose() {
		verbose := map[string]any{"pid": v.Pid, "rootfs": v.Rootfs, "podId": v.PodID, "shimState": v.Shim}
		// As containerd names it; absent for a container created by a crib
		// that did not keep specs.
		if spec, err := s.opts.Sandboxes.ContainerSpec(v.ID); err == nil {
			verbose["runtimeSpec"] = spec
		}
		info, err := json.Marshal(verbose)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func containerStatus(v sandbox.ContainerView) *runtimeapi.ContainerStatus {
	st := &runtimeapi.ContainerStatus{
		Id:          v.ID,
		Metadata:    &runtimeapi.ContainerMetadata{Name: v.Name, Attempt: v.Attempt},
		State:       criContainerState(v.State()),
		CreatedAt:   v.CreatedAt.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: v.Image, UserSpecifiedImage: v.Image},
		ImageRef:    v.ImageRef,
		ImageId:     v.ImageID,
		Labels:      v.Labels,
		Annotations: v.Annotations,
		LogPath:     v.LogPath,
	}
	if !v.Shim.StartedAt.IsZero() {
		st.StartedAt = v.Shim.StartedAt.UnixNano()
	}
	if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		st.FinishedAt = v.Shim.FinishedAt.UnixNano()
		st.ExitCode = int32(v.Shim.ExitCode)
		st.Message = v.Shim.Message
		switch {
		case v.Shim.Reason != "":
			st.Reason = v.Shim.Reason // set by cribd: the shim died (sandbox.ShimDiedReason)
		case v.Shim.OOMKilled:
			st.Reason = "OOMKilled"
		case v.Shim.ExitCode == 0:
			st.Reason = "Completed"
		default:
			st.Reason = "Error"
		}
	}
	if u := v.User; u != nil {
		lu := &runtimeapi.LinuxContainerUser{Uid: int64(u.UID), Gid: int64(u.GID)}
		for _, g := range u.AdditionalGids {
			lu.SupplementalGroups = append(lu.SupplementalGroups, int64(g))
		}
		st.User = &runtimeapi.ContainerUser{Linux: lu}
	}
	if r := v.Resources; r != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{
			CpuPeriod: int64(r.CPUPeriod), CpuQuota: r.CPUQuota, CpuShares: int64(r.CPUShares),
			CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems,
			MemoryLimitInBytes: r.MemoryLimit, MemorySwapLimitInBytes: r.MemorySwapLimit,
			OomScoreAdj: int64(r.OOMScoreAdj), Unified: r.Unified,
		}}
	}
	for _, m := range v.Mounts {
		mnt := &runtimeapi.Mount{
			ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.Readonly,
			Propagation: runtimeapi.MountPropagation(m.Propagation), ImageSubPath: m.ImageSubPath,
		}
		if m.Image != "" {
			mnt.Image = &runtimeapi.ImageSpec{Image: m.Image}
		}
		st.Mounts = append(st.Mounts, mnt)
	}
	return st
}
