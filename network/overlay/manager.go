// Package overlay keeps a node's side of the VXLAN overlay up to date in
// cribd: it owns the VTEP (flannel.1), publishes this node's lease through
// a PeerSource, and programs a route, a neighbour and an FDB entry for
// every other node, reconciling on every change of the source and on a
// timer. It also owns the node's masquerade (an nftables table of crib's
// own, masq.go) and writes the subnet file crib-vxlan reads
// (network/vxlan), whose ADD and DEL then touch only the pod.
package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/network/subnetfile"
)

// vxlanOverhead is what VXLAN over IPv4 adds to each frame.
const vxlanOverhead = 50

// Options configure a Manager.
type Options struct {
	// NodeName names this node's lease.
	NodeName string
	// ClusterNetwork holds every node subnet (e.g. 10.244.0.0/16).
	ClusterNetwork *net.IPNet
	// NodeSubnet is this node's subnet, if configured; otherwise it comes
	// from kubelet through SetPodCIDR, or from a Source that is a
	// SubnetSource (the Node's spec.podCIDR).
	NodeSubnet *net.IPNet
	// Interface is the underlay interface; empty means the default route's.
	Interface string
	// VTEPName, VNI and Port describe the VXLAN device.
	VTEPName string
	VNI      int
	Port     int
	// SubnetFile is written for crib-vxlan once the subnet is known.
	SubnetFile string
	// Source is where leases are published and read.
	Source PeerSource
	// Resync is the period of full reconciliations besides the source's
	// change signals.
	Resync time.Duration
	Log    logrus.FieldLogger
}

// Manager runs the overlay of one node. It is safe for concurrent use.
type Manager struct {
	opts Options
	log  logrus.FieldLogger
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// seams open nftables and iptables; tests replace them.
	seams seams

	mu        sync.Mutex
	subnet    *net.IPNet // guarded by mu
	lastErr   error      // guarded by mu
	published Lease      // only the loop touches it
	// legacyGone: the old iptables masquerade is removed, or was never
	// there; legacyErr is the last failure to remove it, logged once.
	// Only the loop touches them.
	legacyGone bool
	legacyErr  string
}

// seams are the Manager's ways to the node's packet filter.
type seams struct {
	nft      func() (nftConn, error)
	iptables func() (legacyIPTables, error)
}

// New starts the manager's reconcile loop. It does no network work itself:
// the loop does, once the node subnet is known.
func New(opts Options) (*Manager, error) {
	return newManager(opts, seams{nft: newNFTConn, iptables: newLegacyIPTables})
}

// newManager is New with the seams given.
func newManager(opts Options, s seams) (*Manager, error) {
	if opts.Source == nil || opts.ClusterNetwork == nil || opts.NodeName == "" || opts.VTEPName == "" || opts.SubnetFile == "" {
		return nil, errors.New("overlay: Source, ClusterNetwork, NodeName, VTEPName and SubnetFile are required")
	}
	if opts.Resync <= 0 {
		opts.Resync = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	m := &Manager{opts: opts, log: opts.Log, seams: s, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if opts.NodeSubnet != nil {
		if err := m.SetPodCIDR(opts.NodeSubnet.String()); err != nil {
			return nil, err
		}
	}
	go m.loop()
	m.trigger()
	return m, nil
}

// SetPodCIDR sets the node's subnet (kubelet's pod CIDR). It must lie in the
// cluster network. A change reprograms the node; an empty cidr is ignored.
func (m *Manager) SetPodCIDR(cidr string) error {
	changed, err := m.setSubnet(cidr)
	if changed {
		m.trigger()
	}
	return err
}

// setSubnet is SetPodCIDR without the kick, for the loop itself.
func (m *Manager) setSubnet(cidr string) (changed bool, err error) {
	if cidr == "" {
		return false, nil
	}
	_, sn, err := net.ParseCIDR(cidr)
	if err != nil {
		return false, fmt.Errorf("overlay: pod CIDR %q: %w", cidr, err)
	}
	if err := (subnetfile.Subnet{Network: m.opts.ClusterNetwork, Subnet: sn, MTU: 1500}).Validate(); err != nil {
		return false, fmt.Errorf("overlay: pod CIDR %q: %w", cidr, err)
	}
	m.mu.Lock()
	changed = m.subnet == nil || m.subnet.String() != sn.String()
	m.subnet = sn
	m.mu.Unlock()
	if changed {
		m.log.WithField("subnet", sn).Info("overlay: node subnet set")
	}
	return changed, nil
}

// Ready reports whether the overlay is programmed; if not, message says why:
// the source is unusable (HealthReporter), no subnet yet (and, from a
// SubnetSource, why not), or the last reconcile's error.
func (m *Manager) Ready() (bool, string) {
	// The source's methods are called without m.mu: they take their own
	// locks and the loop calls them too.
	if h, ok := m.opts.Source.(HealthReporter); ok {
		if err := h.Healthy(); err != nil {
			return false, "overlay: " + err.Error()
		}
	}
	m.mu.Lock()
	subnet, lastErr := m.subnet, m.lastErr
	m.mu.Unlock()
	if subnet == nil {
		if lastErr != nil {
			return false, "overlay: " + lastErr.Error()
		}
		if ss, ok := m.opts.Source.(SubnetSource); ok {
			if _, why := ss.NodeSubnet(); why != "" {
				return false, "overlay: node pod CIDR unknown: " + why
			}
		}
		return false, "overlay: node pod CIDR unknown: waiting for kubelet's UpdateRuntimeConfig or network.overlay.node_subnet"
	}
	if lastErr != nil {
		return false, "overlay: " + lastErr.Error()
	}
	return true, ""
}

// Close stops reconciling. The VTEP, its entries, the masquerade and the
// lease stay: pods keep their network while cribd restarts.
func (m *Manager) Close() error {
	m.once.Do(func() {
		close(m.stop)
		<-m.done
	})
	return nil
}

func (m *Manager) trigger() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

func (m *Manager) loop() {
	defer close(m.done)
	t := time.NewTicker(m.opts.Resync)
	defer t.Stop()
	changes := m.opts.Source.Changes()
	for {
		select {
		case <-m.stop:
			return
		case <-m.kick:
		case <-t.C:
		case _, ok := <-changes:
			if !ok {
				changes = nil
			}
		}
		err := m.reconcile(context.Background())
		m.mu.Lock()
		prev := m.lastErr
		m.lastErr = err
		m.mu.Unlock()
		if err != nil && (prev == nil || prev.Error() != err.Error()) {
			m.log.WithError(err).Warn("overlay: reconcile")
		} else if err == nil && prev != nil {
			m.log.Info("overlay: reconciled")
		}
	}
}

// reconcile brings the node in line: masquerade, VTEP, subnet file, own
// lease, peers. The masquerade comes before the subnet file, so the first
// pod of a subnet finds it in place.
func (m *Manager) reconcile(ctx context.Context) error {
	if ss, ok := m.opts.Source.(SubnetSource); ok {
		if cidr, _ := ss.NodeSubnet(); cidr != "" {
			if _, err := m.setSubnet(cidr); err != nil {
				return err
			}
		}
	}
	m.mu.Lock()
	sn := m.subnet
	m.mu.Unlock()
	if sn == nil {
		return nil
	}
	if err := m.ensureMasq(sn); err != nil {
		return err
	}
	under, err := findUnderlay(m.opts.Interface)
	if err != nil {
		return err
	}
	mtu := under.link.Attrs().MTU - vxlanOverhead
	vtep, err := ensureVTEP(vtepSpec{
		name: m.opts.VTEPName, vni: m.opts.VNI, port: m.opts.Port, under: under, mtu: mtu,
		addr: &net.IPNet{IP: sn.IP.To4(), Mask: net.CIDRMask(32, 32)},
	})
	if err != nil {
		return err
	}
	if err := m.writeSubnetFile(subnetfile.Subnet{Network: m.opts.ClusterNetwork, Subnet: sn, MTU: mtu, IPMasq: true}); err != nil {
		return err
	}
	own := Lease{Name: m.opts.NodeName, PublicIP: under.ip, Subnet: sn, VtepMAC: vtep.HardwareAddr}
	if !own.Equal(m.published) {
		if err := m.opts.Source.Publish(ctx, own); err != nil {
			return err
		}
		m.published = own
		m.log.WithFields(logrus.Fields{"subnet": sn, "publicIP": under.ip, "vtepMAC": vtep.HardwareAddr}).Info("overlay: lease published")
	}
	leases, err := m.opts.Source.Leases(ctx)
	if err != nil {
		return err
	}
	var peers []peer
	for _, l := range leases {
		switch {
		case l.Name == own.Name:
			continue
		case !m.opts.ClusterNetwork.Contains(l.Subnet.IP) || l.Subnet.Contains(sn.IP) || sn.Contains(l.Subnet.IP):
			m.log.WithFields(logrus.Fields{"node": l.Name, "subnet": l.Subnet}).Warn("overlay: ignoring lease: subnet outside the cluster network or overlapping ours")
			continue
		}
		peers = append(peers, peerOf(l))
	}
	return programPeers(vtep, m.opts.ClusterNetwork, peers)
}

// ensureMasq makes the node's masquerade that of subnet, replacing that of
// an earlier subnet, then removes an older crib's iptables rules if that
// is not done yet: after, so pods are never without a masquerade.
func (m *Manager) ensureMasq(subnet *net.IPNet) error {
	conn, err := m.seams.nft()
	if err != nil {
		return err
	}
	changed, err := ensureMasq(conn, masqSpec{subnet: subnet, cluster: m.opts.ClusterNetwork})
	if err != nil {
		return err
	}
	if changed {
		m.log.WithFields(logrus.Fields{"subnet": subnet, "table": "ip " + masqTable}).Info("overlay: masquerade set")
	}
	if !m.legacyGone {
		m.removeLegacyMasq()
	}
	return nil
}

// removeLegacyMasq removes the iptables masquerade of a crib before issue
// 17, once. A failure is logged (once per error) and retried at the next
// reconcile, but does not fail it: the old rules masquerade the same
// packets as the new ones, so they are only clutter.
func (m *Manager) removeLegacyMasq() {
	ipt, err := m.seams.iptables()
	removed := false
	if err == nil {
		removed, err = removeLegacyMasq(ipt)
	} else if errors.Is(err, errNoIPTables) {
		err = nil
	}
	if err != nil {
		if err.Error() != m.legacyErr {
			m.log.WithError(err).Warn("overlay: removing the old iptables masquerade (retried at each resync)")
			m.legacyErr = err.Error()
		}
		return
	}
	m.legacyGone, m.legacyErr = true, ""
	if removed {
		m.log.WithField("chain", legacyChain).Info("overlay: removed the old iptables masquerade")
	}
}

// RemoveMasquerade deletes the node's masquerade table, if there is one:
// for cribd to call when the overlay is off, so a node that had it on
// keeps nothing of it. It reports whether there was a table. Where
// nf_tables is not loaded there is none, and asking would load it.
func RemoveMasquerade() (bool, error) {
	if _, err := os.Stat("/sys/module/nf_tables"); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	conn, err := newNFTConn()
	if err != nil {
		return false, err
	}
	return removeMasq(conn)
}

// writeSubnetFile rewrites the subnet file when its content would change.
func (m *Manager) writeSubnetFile(s subnetfile.Subnet) error {
	if cur, err := subnetfile.Read(m.opts.SubnetFile); err == nil &&
		cur.Network.String() == s.Network.String() && cur.Subnet.String() == s.Subnet.String() &&
		cur.MTU == s.MTU && cur.IPMasq == s.IPMasq {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.WithError(err).Warn("overlay: rewriting unreadable subnet file")
	}
	if err := subnetfile.Write(m.opts.SubnetFile, s); err != nil {
		return fmt.Errorf("subnet file: %w", err)
	}
	return nil
}
