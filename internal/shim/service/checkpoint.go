package service

import (
	"fmt"
	"path/filepath"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// Checkpoint dumps a running container's processes through CRIU and leaves
// them running. The directories are cribd's, made empty for this call.
func (s *Shim) Checkpoint(req *shimapi.CheckpointRequest, _ *shimapi.Empty) error {
	if !filepath.IsAbs(req.ImagesDir) || !filepath.IsAbs(req.WorkDir) {
		return fmt.Errorf("checkpoint container %s: images and work directories must be absolute: %w", req.ID, errdefs.ErrInvalidArgument)
	}
	return s.withLive(req.ID, func(c *container) error {
		// A created container's init still waits for Start in runc's
		// init code: nothing of the container's process to dump.
		if st := c.snapshot().Status; st != shimapi.StatusRunning {
			return fmt.Errorf("container %s is %s, not running: %w", req.ID, st, errdefs.ErrFailedPrecondition)
		}
		// CRIU runs as a child the implementation waits for itself.
		s.reaper.LockSpawn()
		err := c.lc.Checkpoint(req.ImagesDir, req.WorkDir)
		s.reaper.UnlockSpawn()
		if err != nil {
			return fmt.Errorf("checkpoint container %s: %w", req.ID, err)
		}
		return nil
	})
}
