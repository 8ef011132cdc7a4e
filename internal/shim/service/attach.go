package service

import (
	"fmt"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/stdio"
)

// Attach connects a session to a running container's stdio and hands the
// session's descriptors over in the reply (see shimapi.AttachResponse).
func (s *Shim) Attach(req *shimapi.AttachRequest, resp *shimapi.AttachResponse) error {
	if !req.Stdin && !req.Stdout && !req.Stderr {
		return fmt.Errorf("attach to container %s: none of stdin, stdout and stderr asked for: %w", req.ID, errdefs.ErrInvalidArgument)
	}
	cio, err := s.runningIO(req.ID)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	files, err := cio.Attach(req)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	resp.Tty, resp.Files = cio.Tty(), files
	return nil
}

// Resize sets the size of a running container's terminal.
func (s *Shim) Resize(req *shimapi.ResizeRequest, _ *shimapi.Empty) error {
	if req.Width == 0 || req.Height == 0 {
		return fmt.Errorf("resize container %s: size %dx%d: %w", req.ID, req.Width, req.Height, errdefs.ErrInvalidArgument)
	}
	cio, err := s.runningIO(req.ID)
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	return cio.Resize(req.Width, req.Height)
}

// runningIO returns the stdio of container id if it is running and keeps
// its stdio.
func (s *Shim) runningIO(id string) (cio *stdio.IO, err error) {
	err = s.withContainer(id, func(c *container) error {
		if st := c.snapshot(); st.Status != shimapi.StatusRunning {
			return fmt.Errorf("container %s is %s, not running: %w", id, st.Status, errdefs.ErrFailedPrecondition)
		}
		if c.io == nil {
			return fmt.Errorf("container %s keeps no stdio to attach to: %w", id, errdefs.ErrFailedPrecondition)
		}
		cio = c.io
		return nil
	})
	return cio, err
}
