package service

import (
	"fmt"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// ReopenLog reopens a container's CRI log file at its path, after kubelet
// renamed the old file to rotate it.
func (s *Shim) ReopenLog(req *shimapi.IDRequest, _ *shimapi.Empty) error {
	// A deleted container's log is reopened too (its output may still be
	// draining), as before withContainer.
	return s.withOp(req.ID, func(c *container) error {
		if c.io == nil || !c.io.HasLog() {
			return fmt.Errorf("container %s has no log: %w", req.ID, errdefs.ErrFailedPrecondition)
		}
		if err := c.io.ReopenLog(c.logDir, c.logPath); err != nil {
			return fmt.Errorf("reopen log of container %s: %w", req.ID, err)
		}
		return nil
	})
}
