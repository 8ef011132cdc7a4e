// Package linkaddr sets a link's IPv4 address idempotently: the crib-vxlan
// plugin uses it for the pod bridge's gateway, the overlay manager for the
// VTEP.
package linkaddr

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// EnsureOnly leaves addr as link's only IPv4 address: others are
// removed first (an old gateway with the same IP and another prefix
// included), then addr is added unless it is there already.
func EnsureOnly(link netlink.Link, addr *net.IPNet) error {
	addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == addr.String() {
			have = true
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return fmt.Errorf("remove stale address %s: %w", a.IPNet, err)
		}
	}
	if have {
		return nil
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: addr}); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add address %s: %w", addr, err)
	}
	return nil
}
