package vxlan

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"
)

// ensureBridge makes the node bridge exist, be up and hold gw as its only
// IPv4 address, and turns on IPv4 forwarding. It is idempotent: an existing
// bridge is reused (EEXIST is accepted, then the link is re-read and its
// type checked). A gateway of an earlier node subnet (the pod CIDR changed
// while the node ran) is removed, and its connected route with it.
func ensureBridge(name string, mtu int, gw *net.IPNet) (*netlink.Bridge, error) {
	want := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu, TxQLen: -1}}
	if err := netlink.LinkAdd(want); err != nil && !errors.Is(err, syscall.EEXIST) {
		return nil, fmt.Errorf("create bridge %s: %w", name, err)
	}
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	br, ok := l.(*netlink.Bridge)
	if !ok {
		return nil, fmt.Errorf("%s already exists and is a %s, not a bridge", name, l.Type())
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("bridge %s up: %w", name, err)
	}
	if err := EnsureOnlyAddr(br, gw); err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := ip.EnableIP4Forward(); err != nil {
		return nil, fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return br, nil
}

// EnsureOnlyAddr leaves addr as link's only IPv4 address: others are
// removed first (an old gateway with the same IP and another prefix
// included), then addr is added unless it is there already. The overlay
// manager uses it for the VTEP too.
func EnsureOnlyAddr(link netlink.Link, addr *net.IPNet) error {
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
