package vxlan

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/vishvananda/netlink"

	"github.com/crib-runtime/crib/internal/linkaddr"
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
	if err := linkaddr.EnsureOnly(br, gw); err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := ip.EnableIP4Forward(); err != nil {
		return nil, fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return br, nil
}
