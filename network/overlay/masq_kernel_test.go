package overlay

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"

	"github.com/crib-runtime/crib/internal/testnetns"
)

// do runs f in n, failing the test on its error.
func do(t *testing.T, n ns.NetNS, what string, f func() error) {
	t.Helper()
	if err := n.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// masqNet is three namespaces the test makes: a node forwarding between a
// pod (10.244.7.2, gateway 10.244.7.1 on the node) and "out"
// (198.51.100.2), which also holds 10.244.9.5, a pod of another node as
// far as the node's routes say.
type masqNet struct {
	node, pod, out ns.NetNS
}

func newMasqNet(t *testing.T) *masqNet {
	t.Helper()
	m := &masqNet{node: testnetns.New(t), pod: testnetns.New(t), out: testnetns.New(t)}
	addr := func(s string) *netlink.Addr {
		a, err := netlink.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	route := func(dst, gw string) error {
		_, d, _ := net.ParseCIDR(dst)
		return netlink.RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(gw)})
	}
	do(t, m.node, "node", func() error {
		for _, v := range []struct {
			name, peer string
			peerNS     ns.NetNS
			addr       string
		}{{"vpod", "eth0", m.pod, "10.244.7.1/24"}, {"vout", "eth0", m.out, "198.51.100.1/24"}} {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.name}, PeerName: v.peer,
				PeerNamespace: netlink.NsFd(int(v.peerNS.Fd()))}); err != nil {
				return err
			}
			l, err := netlink.LinkByName(v.name)
			if err != nil {
				return err
			}
			if err := netlink.AddrAdd(l, addr(v.addr)); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		if err := route("10.244.9.0/24", "198.51.100.2"); err != nil {
			return err
		}
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
	for _, side := range []struct {
		n     ns.NetNS
		addrs []string
		gw    string
		dst   string
	}{
		{m.pod, []string{"10.244.7.2/24"}, "10.244.7.1", "0.0.0.0/0"},
		{m.out, []string{"198.51.100.2/24", "10.244.9.5/32"}, "198.51.100.1", "10.244.7.0/24"},
	} {
		do(t, side.n, "pod and out", func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			for _, a := range side.addrs {
				if err := netlink.AddrAdd(l, addr(a)); err != nil {
					return err
				}
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
			return route(side.dst, side.gw)
		})
	}
	return m
}

// sourceSeen sends one UDP datagram from the pod to dst, from a new socket
// (a new port, so a new conntrack entry and a new NAT decision), and
// returns the source address out saw.
func (m *masqNet) sourceSeen(t *testing.T, dst string) string {
	t.Helper()
	var conn *net.UDPConn
	do(t, m.out, "listen", func() (err error) {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 5999})
		return err
	})
	defer conn.Close()
	do(t, m.pod, "send", func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: 5999})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, from, err := conn.ReadFromUDP(make([]byte, 16))
	if err != nil {
		t.Fatalf("nothing from the pod to %s: %v", dst, err)
	}
	return from.IP.String()
}

// TestMasqKernel: the masquerade table against the kernel, in namespaces
// the test makes: written once and then found right (read back from the
// kernel), a pod going out leaves with the node's address and one going to
// a pod of another node with its own, a new node subnet replaces the old
// one's rules, removal leaves no table. nft(8), if installed, shows the
// rules as the intended nft text.
func TestMasqKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m := newMasqNet(t)
	conn, err := nftables.New(nftables.WithNetNSFd(int(m.node.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.sourceSeen(t, "198.51.100.2"); got != "10.244.7.2" {
		t.Fatalf("without the masquerade out saw %s, want the pod's 10.244.7.2", got)
	}

	spec := masqSpec{subnet: cidr(t, "10.244.7.0/24"), cluster: cidr(t, "10.244.0.0/16")}
	if changed, err := ensureMasq(conn, spec); err != nil || !changed {
		t.Fatalf("first ensureMasq: changed %v, %v", changed, err)
	}
	if changed, err := ensureMasq(conn, spec); err != nil || changed {
		t.Fatalf("second ensureMasq: changed %v, %v: the kernel's table does not read back as written", changed, err)
	}
	for _, tc := range []struct{ dst, want string }{
		{"198.51.100.2", "198.51.100.1"}, // outside the cluster network: the node's address
		{"10.244.9.5", "10.244.7.2"},     // a pod of another node: the pod's own
	} {
		if got := m.sourceSeen(t, tc.dst); got != tc.want {
			t.Errorf("pod → %s arrived from %s, want %s", tc.dst, got, tc.want)
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		out := nftList(t, m.node)
		for _, want := range []string{
			"type nat hook postrouting priority srcnat; policy accept;",
			"ip saddr 10.244.7.0/24 ip daddr 10.244.0.0/16 return",
			"ip saddr 10.244.7.0/24 ip daddr 224.0.0.0/4 return",
			"ip saddr 10.244.7.0/24 masquerade",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("nft list ruleset:\n%s\nwant %q", out, want)
			}
		}
	}

	next := masqSpec{subnet: cidr(t, "10.244.8.0/24"), cluster: spec.cluster}
	if changed, err := ensureMasq(conn, next); err != nil || !changed {
		t.Fatalf("ensureMasq of a new subnet: changed %v, %v", changed, err)
	}
	if ok, err := masqIs(conn, next); err != nil || !ok {
		t.Fatalf("after the subnet change masqIs = %v, %v", ok, err)
	}
	if _, err := exec.LookPath("nft"); err == nil {
		if out := nftList(t, m.node); strings.Contains(out, "10.244.7.0") || !strings.Contains(out, "ip saddr 10.244.8.0/24 masquerade") {
			t.Errorf("after the subnet change:\n%s\nwant 10.244.8.0/24's rules only", out)
		}
	}
	if got := m.sourceSeen(t, "198.51.100.2"); got != "10.244.7.2" {
		t.Errorf("after the subnet change a pod of the old subnet went out as %s, want unmasqueraded", got)
	}

	if removed, err := removeMasq(conn); err != nil || !removed {
		t.Fatalf("removeMasq: %v, %v", removed, err)
	}
	if removed, err := removeMasq(conn); err != nil || removed {
		t.Fatalf("removeMasq again: %v, %v", removed, err)
	}
	tables, err := conn.ListTables()
	if err != nil || len(tables) != 0 {
		t.Errorf("after removal: tables %v, %v", tables, err)
	}
}

// TestLegacyMasqKernel: the old crib-vxlan's iptables chain and jumps, made
// with the node's iptables in a namespace the test makes, are removed, and
// a rule of another agent stays.
func TestLegacyMasqKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables")
	}
	node := testnetns.New(t)
	ipt := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("nsenter", append([]string{"--net=" + node.Path(), "--", "iptables", "-t", "nat"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// What crib-vxlan's ensureMasq wrote, for two subnets (the pod CIDR
	// changed once), and a rule of another agent's.
	ipt("-N", legacyChain)
	ipt("-A", legacyChain, "-d", "10.244.0.0/16", "-j", "RETURN")
	ipt("-A", legacyChain, "-d", "224.0.0.0/4", "-j", "RETURN")
	ipt("-A", legacyChain, "-j", "MASQUERADE")
	for _, sn := range []string{"10.244.3.0/24", "10.244.7.0/24"} {
		ipt("-I", "POSTROUTING", "1", "-s", sn, "-m", "comment", "--comment", "crib-vxlan pods of "+sn, "-j", legacyChain)
	}
	ipt("-A", "POSTROUTING", "-s", "10.99.0.0/16", "-m", "comment", "--comment", "another agent", "-j", "MASQUERADE")

	var removed bool
	do(t, node, "remove", func() error {
		i, err := newLegacyIPTables()
		if err != nil {
			return err
		}
		removed, err = removeLegacyMasq(i)
		return err
	})
	if !removed {
		t.Error("removeLegacyMasq found nothing to remove")
	}
	if out := ipt("-S"); strings.Contains(out, legacyChain) || !strings.Contains(out, "another agent") {
		t.Errorf("nat after the removal:\n%s\nwant no %s, the other rule kept", out, legacyChain)
	}
	do(t, node, "remove again", func() error {
		i, err := newLegacyIPTables()
		if err != nil {
			return err
		}
		removed, err = removeLegacyMasq(i)
		return err
	})
	if removed {
		t.Error("the second removal found something")
	}
}

// nftList is `nft list ruleset` in n.
func nftList(t *testing.T, n ns.NetNS) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+n.Path(), "--", "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}
