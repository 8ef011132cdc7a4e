package vxlan

import (
	"errors"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// CmdGC releases every address of this network whose attachment is not in
// cni.dev/valid-attachments. Host veths need no collecting: a veth goes
// with its pod's namespace.
func CmdGC(args *skel.CmdArgs) error {
	c, err := loadConfig(args.StdinData)
	if err != nil {
		return err
	}
	l, err := lock(c.lockPath())
	if err != nil {
		return err
	}
	defer l.unlock()

	valid := make(map[types.GCAttachment]bool, len(c.ValidAttachments))
	for _, a := range c.ValidAttachments {
		valid[a] = true
	}
	allocs, err := c.allocations()
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range allocs {
		if valid[a] {
			continue
		}
		if err := c.release(a.ContainerID, a.IfName); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
