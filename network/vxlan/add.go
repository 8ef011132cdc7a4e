package vxlan

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
)

// CmdAdd attaches a container to the node bridge: veth pair, host-local
// address, default route via the gateway. It starts no process: links and
// addresses go through netlink, IPAM runs in-process (ipam.go), and the
// node's masquerade is cribd's overlay manager's, set once per node
// subnet. Repeating it for an attachment that exists returns that
// attachment's result and allocates nothing.
func CmdAdd(args *skel.CmdArgs) error {
	c, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	if c.subnetErr != nil {
		return types.NewError(types.ErrTryAgainLater, "node subnet unknown", c.subnetErr.Error())
	}
	l, err := lock(c.lockPath())
	if err != nil {
		return err
	}
	defer l.unlock()

	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", args.Netns, err)
	}
	defer netns.Close()

	br, err := ensureBridge(c.Bridge, c.mtu, c.subnet.Gateway())
	if err != nil {
		return err
	}
	if res, err := existingAttachment(c, br, netns, args.IfName); err != nil {
		return err
	} else if res != nil {
		logrus.WithField("container", args.ContainerID).Debug("crib-vxlan: ADD of an existing attachment")
		return types.PrintResult(res, c.CNIVersion)
	}
	res, err := add(c, br, netns, args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	return types.PrintResult(res, c.CNIVersion)
}

// add does ADD's work; on failure it undoes what it did, newest first.
func add(c *config, br *netlink.Bridge, netns ns.NetNS, id, ifName string) (res *types100.Result, err error) {
	host, cont, err := setupVeth(vethRequest{netns: netns, ifName: ifName, mtu: c.mtu, bridge: br, hairpin: c.hairpin})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := deleteLink(netns.Path(), ifName); derr != nil {
				err = fmt.Errorf("%w (and undoing the veth failed: %v)", err, derr)
			}
		}
	}()
	alloc, err := c.allocate(id, ifName)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := c.release(id, ifName); derr != nil {
				err = fmt.Errorf("%w (and releasing the address failed: %v)", err, derr)
			}
		}
	}()

	res = buildResult(c, br, host, cont, []*types100.IPConfig{alloc})
	if err := netns.Do(func(ns.NetNS) error { return ipam.ConfigureIface(ifName, res) }); err != nil {
		return nil, fmt.Errorf("configure %s: %w", ifName, err)
	}
	return res, nil
}

// buildResult is ADD's result: bridge, host veth, pod interface; the pod's
// addresses on the pod interface with the gateway; a default route.
func buildResult(c *config, br *netlink.Bridge, host, cont *types100.Interface, ips []*types100.IPConfig) *types100.Result {
	gw := c.subnet.Gateway().IP
	res := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: br.Name, Mac: br.HardwareAddr.String()},
			host,
			cont,
		},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, GW: gw}},
	}
	for _, ipc := range ips {
		ipc.Interface = types100.Int(2)
		ipc.Gateway = gw
		res.IPs = append(res.IPs, ipc)
	}
	return res
}
