package overlay

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestStaleAfterPeerChange: after a peer's pod CIDR, VTEP MAC or public IP
// changes alone, the entries programPeers made for its old values are
// stale and removeStale deletes them, while those still right stay. The
// pod CIDR case is the one flannel misses (its update handler never sees
// it); here it is the kernel-facing half of the proof, the integration
// test TestVXLANPeerPodCIDRChange the whole.
func TestStaleAfterPeerChange(t *testing.T) {
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	mustPeer := func(subnet, mac, ip string) peer {
		return peerOf(testLease(t, "n2", subnet, ip, mac))
	}
	old := mustPeer("10.244.2.0/24", testMAC2, "192.168.50.12")
	// The entries programPeers made for old.
	oldRoute := netlink.Route{Dst: old.subnet, Gw: old.vtepIP, Protocol: unix.RTPROT_BOOT}
	oldNeigh := netlink.Neigh{IP: old.vtepIP, HardwareAddr: old.vtepMAC, State: netlink.NUD_PERMANENT}
	oldFDB := netlink.Neigh{IP: old.publicIP, HardwareAddr: old.vtepMAC, State: netlink.NUD_PERMANENT}
	tests := []struct {
		name              string
		now               []peer
		route, neigh, fdb bool // whether each old entry is stale
	}{
		{name: "unchanged", now: []peer{old}},
		{name: "pod CIDR alone", now: []peer{mustPeer("10.244.22.0/24", testMAC2, "192.168.50.12")}, route: true, neigh: true},
		{name: "VTEP MAC alone", now: []peer{mustPeer("10.244.2.0/24", testMAC, "192.168.50.12")}, fdb: true},
		{name: "public IP alone", now: []peer{mustPeer("10.244.2.0/24", testMAC2, "192.168.50.112")}, fdb: true},
		{name: "node gone", now: nil, route: true, neigh: true, fdb: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := wantedBy(tc.now)
			if got := w.staleRoute(oldRoute, cluster); got != tc.route {
				t.Errorf("old route stale = %v, want %v", got, tc.route)
			}
			if got := w.staleNeigh(oldNeigh); got != tc.neigh {
				t.Errorf("old neighbour stale = %v, want %v", got, tc.neigh)
			}
			if got := w.staleFDB(oldFDB); got != tc.fdb {
				t.Errorf("old FDB entry stale = %v, want %v", got, tc.fdb)
			}
		})
	}
	// Never stale: what is not ours to remove.
	w := wantedBy(nil)
	_, outside, _ := net.ParseCIDR("192.168.50.0/24")
	if w.staleRoute(netlink.Route{Dst: outside}, cluster) {
		t.Error("a route outside the cluster network is stale")
	}
	if w.staleRoute(netlink.Route{Dst: old.subnet, Protocol: unix.RTPROT_KERNEL}, cluster) {
		t.Error("the kernel's route is stale")
	}
	if w.staleNeigh(netlink.Neigh{IP: old.vtepIP, State: netlink.NUD_REACHABLE}) {
		t.Error("a learned neighbour is stale")
	}
	if w.staleFDB(netlink.Neigh{HardwareAddr: old.vtepMAC}) {
		t.Error("an FDB entry without a destination is stale")
	}
}
