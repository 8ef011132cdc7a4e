package image

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/types"
)

// watchProgress logs a pull's progress at info (which blob, how many
// bytes of how many), so an operator can see a slow pull, and cancels the
// pull through cancel when nothing moves for timeout (0: never). It
// returns, when events is closed, the bytes of blobs downloaded.
func watchProgress(ctx context.Context, log logrus.FieldLogger, events <-chan types.ProgressProperties, timeout time.Duration, cancel context.CancelCauseFunc) (bytes uint64) {
	var stall <-chan time.Time
	var timer *time.Timer
	if timeout > 0 {
		timer = time.NewTimer(timeout)
		defer timer.Stop()
		stall = timer.C
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return bytes
			}
			if ev.Event == types.ProgressEventRead || ev.Event == types.ProgressEventDone {
				bytes += ev.OffsetUpdate
			}
			if timer != nil {
				timer.Reset(timeout)
			}
			logEvent(log, ev)
		case <-stall:
			cancel(fmt.Errorf("pull made no progress for %s (image.pull_progress_timeout)", timeout))
			stall = nil
		case <-ctx.Done():
			stall = nil
		}
	}
}

func logEvent(log logrus.FieldLogger, ev types.ProgressProperties) {
	e := log.WithFields(logrus.Fields{"blob": ev.Artifact.Digest.String(), "size": ev.Artifact.Size})
	switch ev.Event {
	case types.ProgressEventNewArtifact:
		e.Debug("pull: blob started")
	case types.ProgressEventRead:
		e.WithField("bytes", ev.Offset).Info("pull: downloading blob")
	case types.ProgressEventDone:
		e.WithField("bytes", ev.Offset).Info("pull: blob done")
	case types.ProgressEventSkipped:
		e.Info("pull: blob already present")
	}
}
