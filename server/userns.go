package server

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

// usernsField is the request field a pod's user namespace option comes in.
const usernsField = "config.linux.security_context.namespace_options.userns_options"

// podUserNS validates a pod's user namespace option and returns its ID
// mappings: none for the host's user namespace (no option, or mode NODE),
// one UID and one GID range for a pod of its own (mode POD).
//
// Like kubelet's own allocation, a pod gets exactly one range per ID kind,
// starting at container ID 0 so that the pod has a root, and never
// covering host ID 0, the host's root. A pod user namespace owns the pod's
// network, IPC and UTS namespaces, so it cannot be combined with the host's.
func podUserNS(opts *runtimeapi.NamespaceOption) (uids, gids []state.IDMapping, err error) {
	u := opts.GetUsernsOptions()
	if u == nil {
		return nil, nil, nil // clients from before user namespaces: the host's
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if len(u.GetUids()) > 0 || len(u.GetGids()) > 0 {
			return nil, nil, errdefs.InvalidArgument("%s: uids and gids are for mode POD; mode NODE uses the host's user namespace", usernsField)
		}
		return nil, nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, nil, errdefs.InvalidArgument("%s.mode %s is not supported: a pod has its own user namespace (POD) or the host's (NODE)", usernsField, u.GetMode())
	}
	for field, mode := range map[string]runtimeapi.NamespaceMode{
		"network": opts.GetNetwork(), "pid": opts.GetPid(), "ipc": opts.GetIpc(),
	} {
		if mode == runtimeapi.NamespaceMode_NODE {
			return nil, nil, errdefs.InvalidArgument("%s: a pod user namespace cannot be combined with the host's %s namespace (namespace_options.%s NODE)", usernsField, field, field)
		}
	}
	if uids, err = idMappings("uids", u.GetUids()); err != nil {
		return nil, nil, err
	}
	if gids, err = idMappings("gids", u.GetGids()); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

// idMappings validates one kind of a POD user namespace's mappings.
func idMappings(field string, in []*runtimeapi.IDMapping) ([]state.IDMapping, error) {
	if len(in) != 1 {
		return nil, errdefs.InvalidArgument("%s.%s: mode POD takes exactly one mapping, got %d", usernsField, field, len(in))
	}
	m := in[0]
	switch {
	case m.GetContainerId() != 0:
		return nil, errdefs.InvalidArgument("%s.%s[0].container_id is %d: the mapping must start at 0 so that the pod's root is mapped", usernsField, field, m.GetContainerId())
	case m.GetLength() == 0:
		return nil, errdefs.InvalidArgument("%s.%s[0].length is 0", usernsField, field)
	case m.GetHostId() == 0:
		return nil, errdefs.InvalidArgument("%s.%s[0].host_id is 0: the pod's root would be the host's root", usernsField, field)
	case uint64(m.GetHostId())+uint64(m.GetLength()) > 1<<32-1:
		return nil, errdefs.InvalidArgument("%s.%s[0]: host IDs %d to %d run past the largest ID", usernsField, field, m.GetHostId(), uint64(m.GetHostId())+uint64(m.GetLength())-1)
	}
	return []state.IDMapping{{ContainerID: 0, HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// criUserNS is the user namespace option PodSandboxStatus reports.
func criUserNS(uids, gids []state.IDMapping) *runtimeapi.UserNamespace {
	if len(uids) == 0 {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: criIDMappings(uids), Gids: criIDMappings(gids)}
}

func criIDMappings(in []state.IDMapping) []*runtimeapi.IDMapping {
	out := make([]*runtimeapi.IDMapping, 0, len(in))
	for _, m := range in {
		out = append(out, &runtimeapi.IDMapping{ContainerId: m.ContainerID, HostId: m.HostID, Length: m.Size})
	}
	return out
}
