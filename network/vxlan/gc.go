package vxlan

import (
	"context"
	"errors"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// gcTimeout bounds one GC call's delegated DELs.
const gcTimeout = 2 * time.Minute

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
	ctx, cancel := context.WithTimeout(context.Background(), gcTimeout)
	defer cancel()
	var errs []error
	for _, a := range allocs {
		if valid[a] {
			continue
		}
		if err := c.releaseFor(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
