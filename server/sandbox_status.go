package server

import (
	"context"
	"encoding/json"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/sandbox"
)

// PodSandboxStatus reports one pod; verbose adds an "info" JSON document
// with the pause PID, namespace paths, cgroup and CNI result.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	v, err := s.opts.Sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatus(v)}
	if req.GetVerbose() {
		info, err := json.Marshal(verboseInfo{
			Pid:          v.PausePID,
			Phase:        string(v.Phase),
			NetNSPath:    v.NetNSPath,
			IPCPath:      v.IPCPath,
			UTSPath:      v.UTSPath,
			ShmPath:      v.ShmPath,
			CgroupsPath:  v.CgroupsPath,
			ShimDir:      v.ShimDir,
			Hostname:     v.Hostname,
			Sysctls:      v.Sysctls,
			PortMappings: v.PortMappings,
			CNIResult:    v.CNIResult,
		})
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// verboseInfo is the "info" document of a verbose PodSandboxStatus.
type verboseInfo struct {
	Pid          int               `json:"pid"`
	Phase        string            `json:"phase"`
	NetNSPath    string            `json:"netnsPath,omitempty"`
	IPCPath      string            `json:"ipcPath,omitempty"`
	UTSPath      string            `json:"utsPath,omitempty"`
	ShmPath      string            `json:"shmPath,omitempty"`
	CgroupsPath  string            `json:"cgroupsPath"`
	ShimDir      string            `json:"shimDir"`
	Hostname     string            `json:"hostname,omitempty"`
	Sysctls      map[string]string `json:"sysctls,omitempty"`
	PortMappings any               `json:"portMappings,omitempty"`
	CNIResult    any               `json:"cniResult,omitempty"`
}

func podState(v sandbox.View) runtimeapi.PodSandboxState {
	if v.Ready {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func podMetadata(v sandbox.View) *runtimeapi.PodSandboxMetadata {
	md := v.Metadata
	return &runtimeapi.PodSandboxMetadata{Name: md.Name, Uid: md.UID, Namespace: md.Namespace, Attempt: md.Attempt}
}

func podStatus(v sandbox.View) *runtimeapi.PodSandboxStatus {
	st := &runtimeapi.PodSandboxStatus{
		Id:             v.ID,
		Metadata:       podMetadata(v),
		State:          podState(v),
		CreatedAt:      v.CreatedAt.UnixNano(),
		Labels:         v.Labels,
		Annotations:    v.Annotations,
		RuntimeHandler: v.RuntimeHandler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network:       criNamespaceMode(v.NetworkMode),
			Pid:           criNamespaceMode(v.PIDMode),
			Ipc:           criNamespaceMode(v.IPCMode),
			UsernsOptions: criUserNS(v.UIDMappings, v.GIDMappings),
		}}},
	}
	if len(v.IPs) > 0 {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: v.IPs[0]}
		for _, ip := range v.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	} else {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{}
	}
	return st
}
