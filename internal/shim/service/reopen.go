package service

import (
	"fmt"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// ReopenLog reopens a container's CRI log file at its path, after kubelet
// renamed the old file to rotate it.
func (s *Shim) ReopenLog(req *shimapi.IDRequest, _ *shimapi.Empty) error {
	// withOp, not withContainer: ReopenLog never refused a container
	// deleted while it waited for the lock, and keeps its answers.
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
