package service

import (
	"fmt"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// ReopenLog reopens a container's CRI log file at its path, after kubelet
// renamed the old file to rotate it.
func (s *Shim) ReopenLog(req *shimapi.IDRequest, _ *shimapi.Empty) error {
	c := s.get(req.ID)
	if c == nil {
		return fmt.Errorf("container %s: %w", req.ID, errdefs.ErrNotFound)
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.io == nil || !c.io.HasLog() {
		return fmt.Errorf("container %s has no log: %w", req.ID, errdefs.ErrFailedPrecondition)
	}
	if err := c.io.ReopenLog(c.logDir, c.logPath); err != nil {
		return fmt.Errorf("reopen log of container %s: %w", req.ID, err)
	}
	return nil
}
