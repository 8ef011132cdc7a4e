package overlay

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// peer is what one other node needs on this node's VTEP.
type peer struct {
	subnet   *net.IPNet       // 10.244.M.0/24
	vtepIP   net.IP           // 10.244.M.0, M's VTEP address
	vtepMAC  net.HardwareAddr // M's VTEP MAC
	publicIP net.IP           // M's underlay address
}

func peerOf(l Lease) peer {
	return peer{subnet: l.Subnet, vtepIP: l.Subnet.IP.To4(), vtepMAC: l.VtepMAC, publicIP: l.PublicIP.To4()}
}

// programPeers makes the VTEP's routes, neighbours and FDB entries exactly
// those of peers: for each, a route to its subnet via its VTEP address
// (onlink), a permanent neighbour VTEP address → VTEP MAC, and a permanent
// FDB entry VTEP MAC → underlay address. Entries of nodes no longer in
// peers are removed. Errors are collected; every entry is tried.
func programPeers(vtep netlink.Link, cluster *net.IPNet, peers []peer) error {
	idx := vtep.Attrs().Index
	var errs []error
	for _, p := range peers {
		// Neighbour and FDB first, so the route never points at an
		// unresolvable next hop.
		if err := netlink.NeighSet(&netlink.Neigh{
			LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST,
			IP: p.vtepIP, HardwareAddr: p.vtepMAC,
		}); err != nil {
			errs = append(errs, fmt.Errorf("neighbour %s → %s: %w", p.vtepIP, p.vtepMAC, err))
		}
		if err := netlink.NeighSet(&netlink.Neigh{
			LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT,
			IP: p.publicIP, HardwareAddr: p.vtepMAC,
		}); err != nil {
			errs = append(errs, fmt.Errorf("fdb %s → %s: %w", p.vtepMAC, p.publicIP, err))
		}
		if err := netlink.RouteReplace(&netlink.Route{
			LinkIndex: idx, Dst: p.subnet, Gw: p.vtepIP, Flags: int(netlink.FLAG_ONLINK),
		}); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", p.subnet, p.vtepIP, err))
		}
	}
	if err := removeStale(vtep, cluster, wantedBy(peers)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// wanted is the VTEP's entries that peers need: routes by destination,
// neighbours by address, FDB entries by MAC and underlay address. An entry
// of a peer whose subnet, MAC or address changed is keyed by the old
// value, so it is not wanted any more and goes.
type wanted struct {
	route, neigh, fdb map[string]bool
}

func wantedBy(peers []peer) wanted {
	w := wanted{route: map[string]bool{}, neigh: map[string]bool{}, fdb: map[string]bool{}}
	for _, p := range peers {
		w.route[p.subnet.String()] = true
		w.neigh[p.vtepIP.String()] = true
		w.fdb[p.vtepMAC.String()+" "+p.publicIP.String()] = true
	}
	return w
}

// staleRoute: a route into the cluster network, not the kernel's, that no
// peer wants.
func (w wanted) staleRoute(r netlink.Route, cluster *net.IPNet) bool {
	return r.Dst != nil && cluster.Contains(r.Dst.IP) && !w.route[r.Dst.String()] && r.Protocol != unix.RTPROT_KERNEL
}

// staleNeigh: a permanent neighbour no peer wants.
func (w wanted) staleNeigh(n netlink.Neigh) bool {
	return n.State&netlink.NUD_PERMANENT != 0 && !w.neigh[n.IP.String()]
}

// staleFDB: an FDB entry with a destination that no peer wants.
func (w wanted) staleFDB(n netlink.Neigh) bool {
	return n.IP != nil && !w.fdb[n.HardwareAddr.String()+" "+n.IP.String()]
}

// removeStale deletes the VTEP's routes into the cluster network,
// permanent neighbours and FDB entries that no peer wants.
func removeStale(vtep netlink.Link, cluster *net.IPNet, w wanted) error {
	idx := vtep.Attrs().Index
	var errs []error
	routes, err := netlinksafe.RouteList(vtep, netlink.FAMILY_V4)
	if err != nil {
		errs = append(errs, fmt.Errorf("list routes: %w", err))
	}
	for _, r := range routes {
		if !w.staleRoute(r, cluster) {
			continue
		}
		if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %s: %w", r.Dst, err))
		}
	}
	neighs, err := netlink.NeighList(idx, unix.AF_INET)
	if err != nil {
		errs = append(errs, fmt.Errorf("list neighbours: %w", err))
	}
	for _, n := range neighs {
		if !w.staleNeigh(n) {
			continue
		}
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("remove neighbour %s: %w", n.IP, err))
		}
	}
	fdb, err := netlink.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		errs = append(errs, fmt.Errorf("list fdb: %w", err))
	}
	for _, n := range fdb {
		if !w.staleFDB(n) {
			continue
		}
		n.Family, n.Flags = unix.AF_BRIDGE, netlink.NTF_SELF
		if err := netlink.NeighDel(&n); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("remove fdb %s → %s: %w", n.HardwareAddr, n.IP, err))
		}
	}
	return errors.Join(errs...)
}
