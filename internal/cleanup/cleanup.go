// Package cleanup collects the undo steps of a multi-step operation. Each
// resource, once acquired, registers its undo with a description; if the
// operation fails, Run undoes everything newest first and logs each step.
// On success the caller calls Release and the undos are dropped.
//
//	cu := cleanup.New(log)
//	defer cu.Run()
//	... acquire A ...
//	cu.Add("remove A", func(ctx context.Context) error { ... })
//	... acquire B ...
//	cu.Release()
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// Timeout bounds all undo steps together. The undos run under a fresh
// context, since the caller's may be the one that expired.
const Timeout = 30 * time.Second

type step struct {
	what string
	undo func(ctx context.Context) error
}

// Cleanup is a stack of undo steps. The zero value is not usable; use New.
type Cleanup struct {
	log      logrus.FieldLogger
	steps    []step
	released bool
}

// New returns an empty Cleanup that logs to log.
func New(log logrus.FieldLogger) *Cleanup { return &Cleanup{log: log} }

// Add pushes an undo step described by what.
func (c *Cleanup) Add(what string, undo func(ctx context.Context) error) {
	c.steps = append(c.steps, step{what: what, undo: undo})
}

// Release drops every step: the operation succeeded.
func (c *Cleanup) Release() { c.released = true }

// Run undoes every step, newest first, unless Release was called. It tries
// every step even when one fails and returns all failures joined.
func (c *Cleanup) Run() error {
	if c.released {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		if err := s.undo(ctx); err != nil {
			c.log.WithError(err).Warnf("cleanup: %s failed", s.what)
			errs = append(errs, fmt.Errorf("%s: %w", s.what, err))
			continue
		}
		c.log.Debugf("cleanup: %s", s.what)
	}
	c.steps = nil
	return errors.Join(errs...)
}
