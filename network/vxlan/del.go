package vxlan

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/sirupsen/logrus"
)

// CmdDel detaches a container: it releases its address, then removes its
// interface (which takes the host end with it). Like ADD, it starts no
// process. It can be repeated: an
// unknown container, a missing namespace, a missing link or a missing subnet
// file all succeed, and the address is released in every case.
func CmdDel(args *skel.CmdArgs) error {
	c, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	if c.subnetErr != nil {
		logrus.WithError(c.subnetErr).Debug("crib-vxlan: DEL without a subnet file")
	}
	l, err := lock(c.lockPath())
	if err != nil {
		return err
	}
	defer l.unlock()

	if err := c.release(args.ContainerID, args.IfName); err != nil {
		return err
	}
	return deleteLink(args.Netns, args.IfName)
}
