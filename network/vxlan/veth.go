package vxlan

import (
	"errors"
	"fmt"

	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// vethRequest says which veth pair to make.
type vethRequest struct {
	netns   ns.NetNS
	ifName  string
	mtu     int
	bridge  *netlink.Bridge
	hairpin bool
}

// setupVeth creates the pod's veth pair, ifName in the pod and a random
// name on the host, and attaches the host end to the bridge.
func setupVeth(r vethRequest) (host, cont *types100.Interface, err error) {
	host, cont = &types100.Interface{}, &types100.Interface{}
	err = r.netns.Do(func(hostNS ns.NetNS) error {
		h, c, err := ip.SetupVeth(r.ifName, r.mtu, "", hostNS)
		if err != nil {
			return err
		}
		host.Name, host.Mac = h.Name, h.HardwareAddr.String()
		cont.Name, cont.Mac, cont.Sandbox = c.Name, c.HardwareAddr.String(), r.netns.Path()
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create veth %s: %w", r.ifName, err)
	}
	link, err := netlinksafe.LinkByName(host.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("host veth %s: %w", host.Name, err)
	}
	if err := netlink.LinkSetMaster(link, r.bridge); err != nil {
		return nil, nil, fmt.Errorf("attach %s to %s: %w", host.Name, r.bridge.Name, err)
	}
	if err := netlink.LinkSetHairpin(link, r.hairpin); err != nil {
		return nil, nil, fmt.Errorf("hairpin on %s: %w", host.Name, err)
	}
	return host, cont, nil
}

// deleteLink removes ifName in netns; a missing namespace or link is fine.
func deleteLink(netnsPath, ifName string) error {
	if netnsPath == "" {
		return nil
	}
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		err := ip.DelLinkByName(ifName)
		if err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
			return err
		}
		return nil
	})
	var missing ns.NSPathNotExistErr
	if errors.As(err, &missing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s in %s: %w", ifName, netnsPath, err)
	}
	return nil
}
