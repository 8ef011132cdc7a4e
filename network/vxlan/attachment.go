package vxlan

import (
	"errors"
	"fmt"
	"net"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// existingAttachment returns the result of an earlier ADD of this
// attachment if ifName already exists in netns as a veth whose host end is
// on the bridge and which holds an address of the node subnet; nil if
// ifName does not exist. Any other ifName is an error: crib-vxlan does not
// take over interfaces it did not make.
func existingAttachment(c *config, br *netlink.Bridge, netns ns.NetNS, ifName string) (*types100.Result, error) {
	var (
		found     bool
		peerIndex int
		cont      = &types100.Interface{Name: ifName, Sandbox: netns.Path()}
		ips       []*types100.IPConfig
	)
	err := netns.Do(func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(ifName)
		if err != nil {
			var nf netlink.LinkNotFoundError
			if errors.As(err, &nf) {
				return nil
			}
			return err
		}
		found = true
		if _, ok := link.(*netlink.Veth); !ok {
			return fmt.Errorf("%s exists in the pod and is a %s, not crib-vxlan's veth", ifName, link.Type())
		}
		peerIndex = link.Attrs().ParentIndex
		cont.Mac = link.Attrs().HardwareAddr.String()
		addrs, err := netlinksafe.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if c.subnet.Subnet.Contains(a.IP) {
				ips = append(ips, &types100.IPConfig{Address: net.IPNet{IP: a.IP, Mask: a.Mask}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", ifName, err)
	}
	if !found {
		return nil, nil
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s exists in the pod with no address in %s: not a finished crib-vxlan attachment", ifName, c.subnet.Subnet)
	}
	peer, err := netlink.LinkByIndex(peerIndex)
	if err != nil || peer.Attrs().MasterIndex != br.Index {
		return nil, fmt.Errorf("%s exists in the pod but its host end is not on %s", ifName, br.Name)
	}
	host := &types100.Interface{Name: peer.Attrs().Name, Mac: peer.Attrs().HardwareAddr.String()}
	return buildResult(c, br, host, cont, ips), nil
}
