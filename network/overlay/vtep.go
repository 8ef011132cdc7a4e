package overlay

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/crib-runtime/crib/internal/linkaddr"
)

// vtepSpec is the VTEP the node needs.
type vtepSpec struct {
	name  string
	vni   int
	port  int
	under underlay
	mtu   int
	// addr is the node subnet's network address as a /32 (10.244.N.0/32).
	addr *net.IPNet
}

// ensureVTEP makes the VXLAN device exist as spec says, up, with spec.addr
// as its only IPv4 address. A device of that name with other VXLAN
// parameters (VNI, port, local address, learning) is replaced, as flannel
// does; its MAC then changes and the lease follows.
func ensureVTEP(spec vtepSpec) (*netlink.Vxlan, error) {
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: spec.name, MTU: spec.mtu},
		VxlanId:      spec.vni,
		VtepDevIndex: spec.under.link.Attrs().Index,
		SrcAddr:      spec.under.ip,
		Port:         spec.port,
		Learning:     false,
	}
	vx, err := currentVTEP(spec.name)
	if err != nil {
		return nil, err
	}
	if vx != nil && !sameVXLAN(vx, want) {
		if err := netlink.LinkDel(vx); err != nil {
			return nil, fmt.Errorf("replace VTEP %s: %w", spec.name, err)
		}
		vx = nil
	}
	if vx == nil {
		if err := netlink.LinkAdd(want); err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("create VTEP %s: %w", spec.name, err)
		}
		if vx, err = currentVTEP(spec.name); err != nil {
			return nil, err
		}
		if vx == nil {
			return nil, fmt.Errorf("VTEP %s vanished after creation", spec.name)
		}
	}
	if vx.MTU != spec.mtu {
		if err := netlink.LinkSetMTU(vx, spec.mtu); err != nil {
			return nil, fmt.Errorf("VTEP %s MTU %d: %w", spec.name, spec.mtu, err)
		}
	}
	if err := linkaddr.EnsureOnly(vx, spec.addr); err != nil {
		return nil, fmt.Errorf("VTEP %s: %w", spec.name, err)
	}
	if err := netlink.LinkSetUp(vx); err != nil {
		return nil, fmt.Errorf("VTEP %s up: %w", spec.name, err)
	}
	return vx, nil
}

// currentVTEP returns the VXLAN device name, nil if there is none, or an
// error if name is another kind of link.
func currentVTEP(name string) (*netlink.Vxlan, error) {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, fmt.Errorf("VTEP %s: %w", name, err)
	}
	vx, ok := l.(*netlink.Vxlan)
	if !ok {
		return nil, fmt.Errorf("%s exists and is a %s, not a VXLAN device", name, l.Type())
	}
	return vx, nil
}

func sameVXLAN(a, b *netlink.Vxlan) bool {
	return a.VxlanId == b.VxlanId && a.Port == b.Port && a.Learning == b.Learning &&
		a.SrcAddr.Equal(b.SrcAddr) && a.VtepDevIndex == b.VtepDevIndex
}
