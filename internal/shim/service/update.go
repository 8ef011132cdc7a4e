package service

import (
	"fmt"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// Update applies new cgroup resources to a container.
func (s *Shim) Update(req *shimapi.UpdateRequest, _ *shimapi.Empty) error {
	c := s.get(req.ID)
	if c == nil {
		return fmt.Errorf("container %s: %w", req.ID, errdefs.ErrNotFound)
	}
	if req.Resources == nil {
		return nil
	}
	c.op.Lock()
	defer c.op.Unlock()
	if c.lc == nil || c.deleted {
		return fmt.Errorf("container %s is not running: %w", req.ID, errdefs.ErrFailedPrecondition)
	}
	if err := c.lc.Update(req.Resources); err != nil {
		return fmt.Errorf("update container %s: %w", req.ID, err)
	}
	return nil
}
