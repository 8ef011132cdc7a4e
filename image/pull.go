package image

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/internal/failpoint"
)

// Pull fetches name (normalised as Normalize does) with auth and returns
// the image's ID. Concurrent pulls of the same reference with the same
// credentials download once. A pull whose callers all give up is
// cancelled and leaves no image named.
//
// A short name is tried under each unqualified-search registry in turn
// (registries.conf); the first that has it wins, and when none does the
// last registry's answer is returned.
func (s *Service) Pull(ctx context.Context, name string, auth Auth) (ID, error) {
	cands, err := candidates(name, s.search)
	if err != nil {
		return ID{}, err
	}
	var id ID
	for _, named := range cands {
		id, err = s.pullOne(ctx, named, auth)
		if err == nil || !(errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrUnavailable)) {
			return id, err
		}
	}
	return id, err
}

// pullOne pulls one fully qualified reference, merged with pulls in flight.
func (s *Service) pullOne(ctx context.Context, named reference.Named, auth Auth) (ID, error) {
	src := pullable(named)
	key := src.String() + "\x00" + auth.key()
	id, err, shared := s.pulls.do(ctx, key, func(ctx context.Context) (ID, error) {
		return s.pull(ctx, src, auth)
	})
	if shared && err == nil {
		s.log.WithFields(logrus.Fields{"image": src.String(), "id": id.String()}).Debug("pull merged with one in flight")
	}
	return id, err
}

// pull does one download into the store.
func (s *Service) pull(ctx context.Context, named reference.Named, auth Auth) (ID, error) {
	log := s.log.WithField("image", named.String())
	begin := time.Now()
	sys, err := s.systemContext(auth)
	if err != nil {
		return ID{}, err
	}
	srcRef, err := docker.NewReference(named)
	if err != nil {
		return ID{}, fmt.Errorf("pull %s: %w", named, err)
	}
	destRef, err := istorage.Transport.NewStoreReference(s.store, named, "")
	if err != nil {
		return ID{}, fmt.Errorf("pull %s: storage reference: %w", named, err)
	}
	policyCtx, err := signature.NewPolicyContext(s.policy)
	if err != nil {
		return ID{}, fmt.Errorf("pull %s: signature policy: %w", named, err)
	}
	defer func() { _ = policyCtx.Destroy() }()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	progress := make(chan types.ProgressProperties, 16)
	watched := make(chan struct{})
	var fetched uint64
	go func() {
		defer close(watched)
		fetched = watchProgress(ctx, log, progress, s.opts.ProgressTimeout, cancel)
	}()

	log.Info("pulling image")
	s.layers.enter()
	_, err = copy.Image(ctx, policyCtx, destRef, checkedRef{srcRef}, &copy.Options{
		SourceCtx:        sys,
		DestinationCtx:   sys,
		Progress:         progress,
		ProgressInterval: time.Second,
	})
	s.layers.leave(err != nil, s.sweepAfterFailure)
	failpoint.Inject("image.pull.after-copy")
	close(progress)
	<-watched
	if s.opts.ObservePull != nil {
		s.opts.ObservePull(time.Since(begin), fetched, err)
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		return ID{}, classify(err, named)
	}
	img, err := istorage.Transport.GetStoreImage(s.store, destRef)
	if err != nil {
		return ID{}, fmt.Errorf("pull %s: find the stored image: %w", named, err)
	}
	id, err := idFromStore(img.ID)
	if err != nil {
		return ID{}, err
	}
	s.fsInvalidate()
	log.WithFields(logrus.Fields{"id": id.String(), "took": time.Since(begin).Round(time.Millisecond)}).Info("pulled image")
	return id, nil
}
