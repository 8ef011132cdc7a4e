package overlay

import (
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// underlay is the node's interface toward the other nodes.
type underlay struct {
	link netlink.Link
	ip   net.IP
}

// findUnderlay returns the named interface, or the one of the IPv4 default
// route when name is empty, with its first global IPv4 address.
func findUnderlay(name string) (underlay, error) {
	var link netlink.Link
	var err error
	if name != "" {
		link, err = netlinksafe.LinkByName(name)
		if err != nil {
			return underlay{}, fmt.Errorf("underlay interface %s: %w", name, err)
		}
	} else {
		link, err = defaultRouteLink()
		if err != nil {
			return underlay{}, err
		}
	}
	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return underlay{}, fmt.Errorf("underlay interface %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if a.Scope == int(netlink.SCOPE_UNIVERSE) {
			return underlay{link: link, ip: a.IP.To4()}, nil
		}
	}
	return underlay{}, fmt.Errorf("underlay interface %s has no global IPv4 address", link.Attrs().Name)
}

func defaultRouteLink() (netlink.Link, error) {
	routes, err := netlinksafe.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: nil}, netlink.RT_FILTER_DST)
	if err != nil {
		return nil, fmt.Errorf("find default route: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("default route interface: %w", err)
			}
			return l, nil
		}
	}
	return nil, fmt.Errorf("no IPv4 default route: set network.overlay.interface")
}
