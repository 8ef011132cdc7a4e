package image

import (
	"strings"

	"go.podman.io/image/v5/docker/reference"

	"github.com/crib-runtime/crib/api/errdefs"
)

// Normalize parses an image reference the way kubelet and crictl expect:
// "busybox" → "docker.io/library/busybox:latest"; a tag and/or digest is
// kept; a reference with neither gets ":latest". The error wraps
// ErrInvalidArgument and quotes the input.
func Normalize(name string) (reference.Named, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errdefs.InvalidArgument("image reference is empty")
	}
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, errdefs.InvalidArgument("image reference %q does not parse: %v", name, err)
	}
	return reference.TagNameOnly(named), nil
}

// pullable strips a tag from a reference that also has a digest: the
// digest decides what is pulled, and docker's transport refuses both.
func pullable(named reference.Named) reference.Named {
	if c, ok := named.(reference.Canonical); ok {
		if _, tagged := named.(reference.Tagged); tagged {
			d, err := reference.WithDigest(reference.TrimNamed(named), c.Digest())
			if err == nil {
				return d
			}
		}
	}
	return named
}

// isTagged reports whether a stored name is a repo:tag (not repo@digest).
func isTagged(name string) bool {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return false
	}
	_, digested := named.(reference.Digested)
	_, tagged := named.(reference.Tagged)
	return tagged && !digested
}

// registryOf is the host[:port] a reference names.
func registryOf(named reference.Named) string { return reference.Domain(named) }
