package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"go.podman.io/image/v5/docker/reference"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestClassify(t *testing.T) {
	named, err := reference.ParseNormalizedNamed("evil:1")
	if err != nil {
		t.Fatal(err)
	}
	const layer = "sha256:3eac569292e657957493157037c346d7882760fb14d1a08a2b50a417b11a7ca3"
	unpack := fmt.Errorf(`writing blob: adding layer with blob "%s"/""/"sha256:8b08": %w`, layer,
		errors.New("unpacking failed (error: exit status 1; output: no such file or directory)"))
	for _, tc := range []struct {
		name  string
		err   error
		kind  error    // nil: no errdefs kind
		wraps bool     // the result wraps err
		want  []string // substrings of the message
	}{
		{"escaping hard link", unpack, errdefs.ErrFailedPrecondition, true,
			[]string{"docker.io/library/evil:1", layer, "could not be unpacked", "no such file or directory"}},
		{"unpack, no layer named", errors.New("unpacking failed (error: exit status 1; output: x)"), errdefs.ErrFailedPrecondition, true,
			[]string{"layer (unknown)"}},
		{"manifest unknown", errors.New("reading manifest 1 in 127.0.0.1:5000/library/evil: manifest unknown"), errdefs.ErrNotFound, false,
			[]string{"not found in registry docker.io"}},
		{"blocked", errors.New(`registry "blocked.test" is blocked in /etc/containers/registries.conf`), errdefs.ErrFailedPrecondition, false,
			[]string{"is blocked in"}},
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, Err: syscall.ECONNREFUSED},
			errdefs.ErrUnavailable, false, []string{"registry 127.0.0.1:1 unreachable"}},
		{"cancelled", fmt.Errorf("copying: %w", context.Canceled), nil, true, []string{"pull docker.io/library/evil:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err, named)
			if tc.kind != nil && !errors.Is(got, tc.kind) {
				t.Errorf("classify(%v) = %v, not %v", tc.err, got, tc.kind)
			}
			if tc.wraps && !errors.Is(got, tc.err) {
				t.Errorf("classify(%v) does not wrap the cause", tc.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("message %q lacks %q", got, w)
				}
			}
		})
	}
}
