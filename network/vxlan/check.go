package vxlan

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// CmdCheck verifies an attachment against the prevResult: the address is
// still allocated, the bridge holds the gateway, the host veth is on the
// bridge, and the pod interface has the addresses and routes of the result.
func CmdCheck(args *skel.CmdArgs) error {
	c, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	if c.subnetErr != nil {
		return c.subnetErr
	}
	if c.PrevResult == nil {
		return errors.New("check: no prevResult")
	}
	prev, err := types100.NewResultFromResult(c.PrevResult)
	if err != nil {
		return fmt.Errorf("check: prevResult: %w", err)
	}
	l, err := lock(c.lockPath())
	if err != nil {
		return err
	}
	defer l.unlock()

	if err := c.checkAllocation(args.ContainerID, args.IfName); err != nil {
		return err
	}
	if err := checkBridge(c); err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("check: open netns %q: %w", args.Netns, err)
	}
	defer netns.Close()

	var hostIf, contIf *types100.Interface
	for _, i := range prev.Interfaces {
		switch {
		case i.Sandbox == args.Netns && i.Name == args.IfName:
			contIf = i
		case i.Sandbox == "" && i.Name != c.Bridge:
			hostIf = i
		}
	}
	if contIf == nil || hostIf == nil {
		return fmt.Errorf("check: prevResult names no %s in %s and host veth", args.IfName, args.Netns)
	}
	if err := checkHostVeth(c, hostIf.Name); err != nil {
		return err
	}
	return netns.Do(func(ns.NetNS) error {
		if err := ip.ValidateExpectedInterfaceIPs(args.IfName, prev.IPs); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if err := ip.ValidateExpectedRoute(prev.Routes); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		return nil
	})
}

// checkBridge verifies that the bridge exists, is a bridge and holds the
// gateway address.
func checkBridge(c *config) error {
	l, err := netlinksafe.LinkByName(c.Bridge)
	if err != nil {
		return fmt.Errorf("check: bridge %s: %w", c.Bridge, err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("check: %s is a %s, not a bridge", c.Bridge, l.Type())
	}
	addrs, err := netlinksafe.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("check: bridge %s: %w", c.Bridge, err)
	}
	gw := c.subnet.Gateway().String()
	for _, a := range addrs {
		if a.IPNet.String() == gw {
			return nil
		}
	}
	return fmt.Errorf("check: bridge %s does not hold the gateway %s", c.Bridge, gw)
}

// checkHostVeth verifies that the host end of the pod's veth is on the bridge.
func checkHostVeth(c *config, name string) error {
	l, err := netlinksafe.LinkByName(name)
	if err != nil {
		return fmt.Errorf("check: host veth %s: %w", name, err)
	}
	br, err := netlinksafe.LinkByName(c.Bridge)
	if err != nil {
		return fmt.Errorf("check: bridge %s: %w", c.Bridge, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		return fmt.Errorf("check: host veth %s is not on %s", name, c.Bridge)
	}
	return nil
}
