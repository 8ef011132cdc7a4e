package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/go-logr/logr/funcr"
	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"

	"github.com/crib-runtime/crib/api/config"
	"github.com/crib-runtime/crib/network/overlay"
	"github.com/crib-runtime/crib/server"
)

// startOverlay starts the overlay manager when [network.overlay] is enabled
// (nil otherwise), first writing the default crib-vxlan conflist into an
// empty CNI conf dir. With the overlay off it removes the overlay's
// masquerade table, if an earlier run with the overlay on left one.
func startOverlay(cfg config.Config, log *logrus.Logger) (*overlay.Manager, error) {
	o := cfg.Network.Overlay
	l := log.WithField("component", "overlay")
	if !o.Enabled {
		// One netlink dump when there is nothing to remove. A kernel
		// without nf_tables cannot hold the table either.
		if removed, err := overlay.RemoveMasquerade(); err != nil {
			l.WithError(err).Debug("overlay off: masquerade table not checked")
		} else if removed {
			l.Info("overlay off: removed the overlay's masquerade table")
		}
		return nil, nil
	}
	wrote, err := overlay.WriteDefaultConflist(cfg.Network.ConfDir, overlay.ConflistOptions{
		Name: "crib", Bridge: o.BridgeName, SubnetFile: o.SubnetFile, DataDir: o.IPAMDataDir,
	})
	if err != nil {
		return nil, fmt.Errorf("network.overlay: %w", err)
	}
	if wrote {
		l.WithField("dir", cfg.Network.ConfDir).Info("overlay: wrote the default crib-vxlan conflist")
	}
	name := o.NodeName
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("network.overlay.node_name: %w", err)
		}
		if o.Peers == config.PeersKubernetes {
			name = strings.ToLower(name) // as kubelet names its Node
		}
	}
	_, cluster, _ := net.ParseCIDR(o.ClusterNetwork) // validated by config
	var subnet *net.IPNet
	if o.NodeSubnet != "" {
		_, subnet, _ = net.ParseCIDR(o.NodeSubnet)
	}
	src, err := peerSource(o, name, l)
	if err != nil {
		return nil, err
	}
	m, err := overlay.New(overlay.Options{
		NodeName: name, ClusterNetwork: cluster, NodeSubnet: subnet, Interface: o.Interface,
		VTEPName: o.VTEPName, VNI: o.VNI, Port: o.Port, SubnetFile: o.SubnetFile,
		Source: src, Log: l,
	})
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("network.overlay: %w", err)
	}
	return m, nil
}

// peerSource is the overlay's PeerSource as network.overlay.peers says. A
// Kubernetes source fails here only on a bad node name: a kubeconfig that
// does not load, or an API server away, leave cribd serving with
// NetworkReady false and the reason (overlay.HealthReporter).
func peerSource(o config.Overlay, node string, log logrus.FieldLogger) (overlay.PeerSource, error) {
	if o.Peers == config.PeersKubernetes {
		// client-go's own messages (a reflector's failed list, at each
		// retry) go to the debug level: the source logs each new API
		// error once at warning and NetworkReady carries it.
		klog.SetLogger(funcr.New(func(prefix, args string) {
			log.WithField("from", "client-go").Debug(strings.TrimSpace(prefix + " " + args))
		}, funcr.Options{}))
		src, err := overlay.NewKubeSource(overlay.KubeOptions{
			NodeName: node, VNI: o.VNI, Connect: overlay.KubeconfigClient(o.Kubeconfig), Log: log,
		})
		if err != nil {
			return nil, fmt.Errorf("network.overlay.node_name %q: %w", node, err)
		}
		log.WithFields(logrus.Fields{"node": node, "kubeconfig": o.Kubeconfig}).Info("overlay: peers from Kubernetes Nodes")
		return src, nil
	}
	src, err := overlay.NewDirSource(o.LeaseDir, log)
	if err != nil {
		return nil, fmt.Errorf("network.overlay.lease_dir: %w", err)
	}
	return src, nil
}

// overlayStatus is NetworkReady with the overlay: ready when both the CNI
// config and the overlay are, and the sink of kubelet's pod CIDR.
type overlayStatus struct {
	cni     server.NetworkStatus
	overlay *overlay.Manager
}

// Ready reports the CNI config's state, then the overlay's.
func (s overlayStatus) Ready() (bool, string) {
	if ok, msg := s.cni.Ready(); !ok {
		return ok, msg
	}
	return s.overlay.Ready()
}

// SetPodCIDR hands kubelet's pod CIDR to the overlay manager.
func (s overlayStatus) SetPodCIDR(cidr string) error { return s.overlay.SetPodCIDR(cidr) }

// Info is Status(verbose)'s network entry: the CNI config's details and
// the overlay's state.
func (s overlayStatus) Info() any {
	ok, msg := s.overlay.Ready()
	info := map[string]any{"overlay": map[string]any{"ready": ok, "message": msg}}
	if n, isInfo := s.cni.(server.NetworkInfo); isInfo {
		info["cni"] = n.Info()
	}
	return info
}
