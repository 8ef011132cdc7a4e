package image

import (
	"context"
	"testing"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/types"
)

func TestWatchProgressCountsDownloadedBytes(t *testing.T) {
	tests := []struct {
		name   string
		events []types.ProgressProperties
		want   uint64
	}{
		{name: "no events", want: 0},
		{name: "reads then done", events: []types.ProgressProperties{
			{Event: types.ProgressEventNewArtifact},
			{Event: types.ProgressEventRead, Offset: 100, OffsetUpdate: 100},
			{Event: types.ProgressEventRead, Offset: 250, OffsetUpdate: 150},
			{Event: types.ProgressEventDone, Offset: 260, OffsetUpdate: 10},
		}, want: 260},
		{name: "two blobs, one skipped", events: []types.ProgressProperties{
			{Event: types.ProgressEventNewArtifact},
			{Event: types.ProgressEventDone, Offset: 42, OffsetUpdate: 42},
			{Event: types.ProgressEventSkipped, Artifact: types.BlobInfo{Size: 1 << 20}},
		}, want: 42},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan types.ProgressProperties, len(tc.events))
			for _, ev := range tc.events {
				ch <- ev
			}
			close(ch)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			log := logrus.New()
			log.SetLevel(logrus.PanicLevel)
			if got := watchProgress(ctx, log, ch, 0, cancel); got != tc.want {
				t.Errorf("watchProgress = %d bytes, want %d", got, tc.want)
			}
		})
	}
}
