package config

import (
	"fmt"
	"net"
	"path/filepath"
)

// Overlay configures the VXLAN overlay ([network.overlay]): cribd's overlay
// manager and the default crib-vxlan conflist.
type Overlay struct {
	// Enabled turns the overlay manager on.
	Enabled bool `toml:"enabled"`
	// ClusterNetwork holds every node's pod subnet.
	ClusterNetwork string `toml:"cluster_network"`
	// NodeSubnet is this node's pod subnet; empty means kubelet's pod CIDR
	// (UpdateRuntimeConfig).
	NodeSubnet string `toml:"node_subnet"`
	// Interface is the underlay interface; empty means the default route's.
	Interface string `toml:"interface"`
	// VNI and Port are the VXLAN id and UDP port.
	VNI  int `toml:"vni"`
	Port int `toml:"port"`
	// VTEPName and BridgeName name the VXLAN device and the pod bridge.
	VTEPName   string `toml:"vtep_name"`
	BridgeName string `toml:"bridge_name"`
	// NodeName names this node's lease, with peers = "kubernetes" its
	// Node; empty means the hostname (lower-cased for Kubernetes, as
	// kubelet names its Node).
	NodeName string `toml:"node_name"`
	// Peers is where nodes find each other: "dir", the shared LeaseDir,
	// or "kubernetes", the cluster's Node objects with flannel's
	// annotations (network/overlay KubeSource).
	Peers string `toml:"peers"`
	// Kubeconfig is the credentials for Peers = "kubernetes": a user that
	// may get/list/watch Nodes and patch nodes/status (flannel's
	// ClusterRole). Not kubelet's: since Kubernetes 1.32 the node
	// authorizer lets a node read only its own Node. It may appear after
	// cribd starts: it is retried.
	Kubeconfig string `toml:"kubeconfig"`
	// LeaseDir is the directory of node leases every node shares.
	LeaseDir string `toml:"lease_dir"`
	// SubnetFile is where cribd writes the node subnet for crib-vxlan.
	SubnetFile string `toml:"subnet_file"`
	// IPAMDataDir is host-local's directory in the default conflist.
	IPAMDataDir string `toml:"ipam_data_dir"`
}

// The values of [network.overlay] peers.
const (
	PeersDir        = "dir"
	PeersKubernetes = "kubernetes"
)

// defaultOverlay is the [network.overlay] default: off, flannel's values.
func defaultOverlay() Overlay {
	return Overlay{
		ClusterNetwork: "10.244.0.0/16",
		VNI:            1,
		Port:           8472,
		VTEPName:       "flannel.1",
		BridgeName:     "cni0",
		Peers:          PeersDir,
		LeaseDir:       "/var/lib/crib/overlay/leases",
		SubnetFile:     "/run/crib/overlay/subnet.env",
		IPAMDataDir:    "/var/lib/cni/networks",
	}
}

func (o Overlay) validate() error {
	const p = "network.overlay."
	_, cluster, err := net.ParseCIDR(o.ClusterNetwork)
	if err != nil || cluster.IP.To4() == nil {
		return fmt.Errorf("key %q: %q is not an IPv4 CIDR", p+"cluster_network", o.ClusterNetwork)
	}
	if o.NodeSubnet != "" {
		_, sn, err := net.ParseCIDR(o.NodeSubnet)
		if err != nil || !cluster.Contains(sn.IP) {
			return fmt.Errorf("key %q: %q is not a CIDR inside %s", p+"node_subnet", o.NodeSubnet, o.ClusterNetwork)
		}
		if ones, _ := sn.Mask.Size(); ones > 30 {
			return fmt.Errorf("key %q: %q is too small for a gateway and pods", p+"node_subnet", o.NodeSubnet)
		}
	}
	if o.VNI < 1 || o.VNI > 1<<24-1 {
		return fmt.Errorf("key %q: %d is not a VNI (1-16777215)", p+"vni", o.VNI)
	}
	if o.Port < 1 || o.Port > 65535 {
		return fmt.Errorf("key %q: %d is not a UDP port", p+"port", o.Port)
	}
	for k, v := range map[string]string{"vtep_name": o.VTEPName, "bridge_name": o.BridgeName} {
		if v == "" || len(v) > 15 {
			return fmt.Errorf("key %q: %q is not an interface name (1-15 characters)", p+k, v)
		}
	}
	switch o.Peers {
	case PeersDir:
	case PeersKubernetes:
		if !filepath.IsAbs(o.Kubeconfig) {
			return fmt.Errorf("key %q: %q is not an absolute path (peers = %q needs a kubeconfig whose user may list and watch Nodes)", p+"kubeconfig", o.Kubeconfig, PeersKubernetes)
		}
		if o.NodeSubnet != "" {
			return fmt.Errorf("key %q: must be empty with peers = %q: the subnet is the Node's spec.podCIDR", p+"node_subnet", PeersKubernetes)
		}
		if o.NodeName != "" && !isDNSSubdomain(o.NodeName) {
			return fmt.Errorf("key %q: %q is not a Node name (lower-case DNS subdomain)", p+"node_name", o.NodeName)
		}
	default:
		return fmt.Errorf("key %q: %q is not one of %s, %s", p+"peers", o.Peers, PeersDir, PeersKubernetes)
	}
	for _, kv := range [][2]string{{"lease_dir", o.LeaseDir}, {"subnet_file", o.SubnetFile}, {"ipam_data_dir", o.IPAMDataDir}} {
		if !filepath.IsAbs(kv[1]) {
			return fmt.Errorf("key %q: %q is not an absolute path", p+kv[0], kv[1])
		}
	}
	return nil
}

// isDNSSubdomain reports whether s is a DNS subdomain as Kubernetes names
// nodes: at most 253 of [-a-z0-9.], starting and ending alphanumeric. Not a
// regexp, which cribd would compile at every start and re-exec.
func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && ((c != '-' && c != '.') || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}
