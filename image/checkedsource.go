package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.podman.io/image/v5/types"

	"github.com/crib-runtime/crib/internal/failpoint"
)

// checkedRef is an image reference whose layer blobs are checked by
// checkLayer as the copy reads them. Everything else is ref's.
//
// Wrapping hides the source's internal extensions from the copy: partial
// (zstd:chunked) pulls, which would bypass the check, and non-simple-signing
// signatures, so New refuses a signature policy that needs sigstore ones.
type checkedRef struct {
	types.ImageReference
}

// NewImageSource opens ref's source with checked blobs.
func (r checkedRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	src, err := r.ImageReference.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return &checkedSource{ImageSource: src, ref: r}, nil
}

// checkedSource checks each layer blob it hands out.
type checkedSource struct {
	types.ImageSource
	ref checkedRef
}

// Reference is the wrapped reference, so that later opens are checked too.
func (s *checkedSource) Reference() types.ImageReference { return s.ref }

// GetBlob returns the blob; a layer's stream fails with an *EscapeError
// (at the latest at its end, before the copy commits it) when an entry
// reaches outside the layer.
func (s *checkedSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	rc, size, err := s.ImageSource.GetBlob(ctx, info, cache)
	if err != nil || !isLayerMediaType(info.MediaType) {
		return rc, size, err
	}
	failpoint.Inject("image.pull.during-layer")
	return newCheckedBlob(rc, info.Digest.String()), size, nil
}

// isLayerMediaType reports whether a blob of this media type is a layer
// tar (compressed or not; "" in schema 1 manifests). Encrypted layers are
// decrypted after the fetch, so their ciphertext is not checked.
func isLayerMediaType(mt string) bool {
	return mt == "" || (strings.Contains(mt, ".tar") && !strings.Contains(mt, "encrypted"))
}

// errBlobClosed ends a check whose blob was closed before its end.
var errBlobClosed = errors.New("layer blob closed before its end")

// checkedBlob passes a blob through while a goroutine checks a copy of it.
// The copy's own reading decompresses the layer too; doing it again here,
// on another core, keeps the library's path untouched.
type checkedBlob struct {
	rc   io.ReadCloser
	pw   *io.PipeWriter
	done chan error // the check's result, sent once
	err  error      // the result of the stream once it is known
}

func newCheckedBlob(rc io.ReadCloser, layer string) *checkedBlob {
	pr, pw := io.Pipe()
	b := &checkedBlob{rc: rc, pw: pw, done: make(chan error, 1)}
	go func() {
		err := checkLayer(pr, layer)
		if err == nil {
			err = io.EOF // what a write after the check ended sees
		}
		_ = pr.CloseWithError(err)
		b.done <- err
	}()
	return b
}

// Read reads the blob; it returns the check's failure instead of io.EOF.
func (b *checkedBlob) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if n > 0 {
		if _, werr := b.pw.Write(p[:n]); werr != nil {
			// The check ended first: an escape, or a stream it could not read.
			b.err = b.result()
			if errors.Is(b.err, io.EOF) {
				b.err = fmt.Errorf("layer blob continues after the end of its tar stream")
			}
			return n, b.err
		}
	}
	if errors.Is(err, io.EOF) {
		_ = b.pw.Close()
		if b.err = b.result(); errors.Is(b.err, io.EOF) {
			b.err = io.EOF
		}
		return n, b.err
	}
	if err != nil {
		b.err = err
		b.pw.CloseWithError(err)
	}
	return n, err
}

// result waits for the check's verdict.
func (b *checkedBlob) result() error {
	err := <-b.done
	b.done <- err // keep it for Close
	return err
}

// Close closes the blob and ends the check.
func (b *checkedBlob) Close() error {
	b.pw.CloseWithError(errBlobClosed)
	return b.rc.Close()
}
