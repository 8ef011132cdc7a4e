package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/internal/nsfs"
)

// ifName is the pod's interface, as kubelet and every CNI plugin expect.
const ifName = "eth0"

// cleanupTimeout bounds the DEL that undoes a failed ADD. It runs on a fresh
// context, since the caller's may be what ran out.
const cleanupTimeout = time.Minute

// PortMapping is a pod's host port, passed to plugins with the
// "portMappings" capability (e.g. portmap).
type PortMapping struct {
	// Protocol is tcp, udp or sctp (any case); empty means tcp.
	Protocol      string
	ContainerPort int32
	// HostPort 0 means no host port: the mapping is not passed on.
	HostPort int32
	// HostIP, if set, limits the host port to that address.
	HostIP string
}

// SetupRequest names a pod and its network namespace. Teardown takes the
// same request as Setup.
type SetupRequest struct {
	// SandboxID is the CNI container ID.
	SandboxID string
	// NetNSPath is the pinned network namespace (see sandbox/nsfs).
	NetNSPath string

	PodName, PodNamespace, PodUID string

	PortMappings []PortMapping
	// Bandwidth, if set, is passed to plugins with the "bandwidth"
	// capability; see BandwidthFromAnnotations.
	Bandwidth *Bandwidth
}

// Result is what ADD gave the pod.
type Result struct {
	// IPs are the pod's addresses, IPv4 first, then IPv6.
	IPs []net.IP
	// Interface is the pod's interface name.
	Interface string
	// Raw is the plugins' result (CNI spec 1.0.0 JSON), for verbose status.
	Raw json.RawMessage
}

// Setup attaches the pod to the network (CNI ADD) and returns its IPs. If ADD
// fails, Setup runs DEL with the same arguments before returning, so nothing
// is left allocated; the error carries the plugin's message. It fails with
// errdefs.ErrFailedPrecondition when no valid network config is loaded.
func (m *Manager) Setup(ctx context.Context, req SetupRequest) (*Result, error) {
	if req.NetNSPath == "" {
		return nil, errdefs.InvalidArgument("setup network: sandbox %q has no network namespace", req.SandboxID)
	}
	rt, err := req.runtimeConf()
	if err != nil {
		return nil, err
	}
	list, err := m.current()
	if err != nil {
		return nil, errdefs.FailedPrecondition("failed to setup network for sandbox %q: network not ready: %v", req.SandboxID, err)
	}
	log := m.log.WithFields(logrus.Fields{"sandbox": req.SandboxID, "network": list.Name})

	start := time.Now()
	res, err := m.cni.AddNetworkList(ctx, list, rt)
	m.observe("ADD", start, err)
	var result *Result
	if err == nil {
		result, err = toResult(res)
	}
	if err != nil {
		err = fmt.Errorf("failed to setup network for sandbox %q: %w", req.SandboxID, err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		delStart := time.Now()
		derr := m.cni.DelNetworkList(cctx, list, rt)
		m.observe("DEL", delStart, derr)
		if derr != nil {
			log.WithError(derr).Warn("network: DEL after failed ADD")
			return nil, fmt.Errorf("%w (and DEL to clean up failed: %v)", err, derr)
		}
		return nil, err
	}
	log.WithFields(logrus.Fields{"ips": result.IPs, "took": time.Since(start)}).Debug("network: ADD")
	return result, nil
}

// Teardown detaches the pod from the network (CNI DEL). It uses the config
// and arguments cached by ADD when there are any, else the current config
// (with neither it fails with errdefs.ErrFailedPrecondition). Repeating it is
// safe.
//
// If the namespace is gone it still runs DEL, with no namespace, so plugins
// release the pod's IPs. Some host state may then stay: the bridge plugin
// (up to at least v1.9.1) removes its ipMasq rule only when it can read the
// pod's address in the namespace. So call Teardown before unpinning.
func (m *Manager) Teardown(ctx context.Context, req SetupRequest) error {
	rt, err := req.runtimeConf()
	if err != nil {
		return err
	}
	if !nsfs.IsPinned(req.NetNSPath) {
		rt.NetNS = ""
	}
	targets, err := m.teardownTargets(rt)
	if err != nil {
		return err
	}
	for _, t := range targets {
		start := time.Now()
		err := m.cni.DelNetworkList(ctx, t.list, t.rt)
		m.observe("DEL", start, err)
		if err != nil {
			return fmt.Errorf("failed to destroy network for sandbox %q: %w", req.SandboxID, err)
		}
		m.log.WithFields(logrus.Fields{
			"sandbox": req.SandboxID, "network": t.list.Name, "netns": t.rt.NetNS, "took": time.Since(start),
		}).Debug("network: DEL")
	}
	return nil
}

// delTarget is one network to run DEL for, with its arguments.
type delTarget struct {
	list *libcni.NetworkConfigList
	rt   *libcni.RuntimeConf
}

// teardownTargets returns what to run DEL with: each network ADD cached for
// this sandbox, with the config and args ADD used (the config may have
// changed since), or else the current config with rt.
func (m *Manager) teardownTargets(rt *libcni.RuntimeConf) ([]delTarget, error) {
	attachments, err := m.cni.GetCachedAttachments(rt.ContainerID)
	if err != nil {
		m.log.WithError(err).WithField("sandbox", rt.ContainerID).Warn("network: reading CNI cache")
	}
	var targets []delTarget
	for _, a := range attachments {
		if a.IfName != rt.IfName {
			continue
		}
		list, err := libcni.ConfListFromBytes(a.Config)
		if err != nil || len(list.Plugins) == 0 {
			continue
		}
		cached := *rt
		if len(a.CniArgs) > 0 {
			cached.Args = a.CniArgs
		}
		if len(a.CapabilityArgs) > 0 {
			cached.CapabilityArgs = a.CapabilityArgs
		}
		targets = append(targets, delTarget{list, &cached})
	}
	if len(targets) > 0 {
		return targets, nil
	}
	list, err := m.current()
	if err != nil {
		return nil, errdefs.FailedPrecondition("failed to destroy network for sandbox %q: network not ready: %v", rt.ContainerID, err)
	}
	return []delTarget{{list, rt}}, nil
}

// runtimeConf builds the arguments of ADD and DEL: CNI_ARGS as kubelet's
// runtimes pass them, and capability args only when there are any.
func (r SetupRequest) runtimeConf() (*libcni.RuntimeConf, error) {
	if r.SandboxID == "" {
		return nil, errdefs.InvalidArgument("network: sandbox id is empty")
	}
	rt := &libcni.RuntimeConf{
		ContainerID: r.SandboxID,
		NetNS:       r.NetNSPath,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", r.PodNamespace},
			{"K8S_POD_NAME", r.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", r.SandboxID},
			{"K8S_POD_UID", r.PodUID},
		},
	}
	caps := map[string]any{}
	ports, err := portMappings(r.PortMappings)
	if err != nil {
		return nil, err
	}
	if len(ports) > 0 {
		caps["portMappings"] = ports
	}
	if r.Bandwidth != nil && *r.Bandwidth != (Bandwidth{}) {
		caps["bandwidth"] = r.Bandwidth
	}
	if len(caps) > 0 {
		rt.CapabilityArgs = caps
	}
	return rt, nil
}

// cniPortMapping is one entry of the "portMappings" capability.
type cniPortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// portMappings converts the mappings that have a host port.
func portMappings(in []PortMapping) ([]cniPortMapping, error) {
	var out []cniPortMapping
	for _, p := range in {
		if p.HostPort == 0 {
			continue
		}
		proto := strings.ToLower(p.Protocol)
		switch proto {
		case "":
			proto = "tcp"
		case "tcp", "udp", "sctp":
		default:
			return nil, errdefs.InvalidArgument("port mapping %d: unknown protocol %q", p.ContainerPort, p.Protocol)
		}
		if p.HostPort < 0 || p.HostPort > 65535 || p.ContainerPort <= 0 || p.ContainerPort > 65535 {
			return nil, errdefs.InvalidArgument("port mapping %d→%d: port out of range", p.HostPort, p.ContainerPort)
		}
		out = append(out, cniPortMapping{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: proto, HostIP: p.HostIP})
	}
	return out, nil
}

// toResult reads the pod's IPs from a plugin result: the addresses of
// interfaces inside the pod, or not tied to an interface.
func toResult(r types.Result) (*Result, error) {
	res, err := types100.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("read plugin result: %w", err)
	}
	var v4, v6 []net.IP
	for _, ipc := range res.IPs {
		if i := ipc.Interface; i != nil && *i >= 0 && *i < len(res.Interfaces) && res.Interfaces[*i].Sandbox == "" {
			continue // a host-side address
		}
		if ip4 := ipc.Address.IP.To4(); ip4 != nil {
			v4 = append(v4, ip4)
		} else {
			v6 = append(v6, ipc.Address.IP)
		}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode plugin result: %w", err)
	}
	return &Result{IPs: append(v4, v6...), Interface: ifName, Raw: raw}, nil
}
