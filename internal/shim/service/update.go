package service

import (
	"fmt"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

// Update applies new cgroup resources to a container.
func (s *Shim) Update(req *shimapi.UpdateRequest, _ *shimapi.Empty) error {
	if req.Resources == nil { // nothing to apply, to a container that exists
		if s.get(req.ID) == nil {
			return notFound(req.ID)
		}
		return nil
	}
	return s.withLive(req.ID, func(c *container) error {
		if err := c.lc.Update(req.Resources); err != nil {
			return fmt.Errorf("update container %s: %w", req.ID, err)
		}
		return nil
	})
}
