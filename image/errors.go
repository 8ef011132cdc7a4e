package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"

	"github.com/crib-runtime/crib/api/errdefs"
)

// classify turns a failed copy into an error of the kind the CRI caller
// should see, naming the registry and quoting what it answered.
func classify(err error, named reference.Named) error {
	reg := registryOf(named)
	msg := err.Error()
	var unauth docker.ErrUnauthorizedForCredentials
	var coder errcode.ErrorCoder
	var netErr net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var escape *EscapeError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("pull %s: %w", named, err)
	case errors.As(err, &unauth),
		errors.As(err, &coder) && (coder.ErrorCode() == errcode.ErrorCodeUnauthorized || coder.ErrorCode() == errcode.ErrorCodeDenied),
		strings.Contains(msg, "authentication required"):
		return errdefs.Unauthenticated("pull %s: registry %s refused authentication: %w", named, reg, err)
	case errors.As(err, &escape):
		return errdefs.FailedPrecondition("pull %s: refused: %v", named, escape)
	case strings.Contains(msg, "unpacking failed"):
		// storage's chroot unpacker refused or failed an entry of a layer
		// (ENOSPC is reported apart, as a bare errno). What reaches us is
		// only the helper's last words, such as "no such file or
		// directory" for a hard link to a file outside the layer.
		return errdefs.FailedPrecondition("pull %s: layer %s could not be unpacked: it is malformed or reaches outside itself (such as a hard link to a file the layer does not hold): %w", named, layerOf(msg), err)
	case strings.Contains(msg, "is blocked in"):
		return errdefs.FailedPrecondition("pull %s: %v", named, err)
	case errors.As(err, &coder) && (coder.ErrorCode() == v2.ErrorCodeManifestUnknown || coder.ErrorCode() == v2.ErrorCodeNameUnknown),
		// A mirror answered "manifest unknown", then the upstream could
		// not be reached: the mirror's answer is the one that counts.
		strings.Contains(msg, "manifest unknown"), strings.Contains(msg, "name unknown"):
		return errdefs.NotFound("pull %s: not found in registry %s: %v", named, reg, err)
	case errors.As(err, &dnsErr):
		return errdefs.Unavailable("pull %s: registry %s unreachable: %v", named, hostPort(reg), err)
	case errors.As(err, &opErr):
		return errdefs.Unavailable("pull %s: registry %s unreachable: %v", named, opAddr(opErr, reg), err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return errdefs.Unavailable("pull %s: registry %s unreachable: %v", named, hostPort(reg), err)
	}
	return fmt.Errorf("pull %s from %s: %w", named, reg, err)
}

// layerBlobRE finds the layer c/image's storage destination names in
// "adding layer with blob "sha256:…"/…".
var layerBlobRE = regexp.MustCompile(`adding layer with blob "(sha256:[0-9a-f]{64})"`)

// layerOf is the digest of the layer a failed commit names, else "(unknown)".
func layerOf(msg string) string {
	if m := layerBlobRE.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return "(unknown)"
}

// hostPort adds the default HTTPS port to a registry without one.
func hostPort(reg string) string {
	if _, _, err := net.SplitHostPort(reg); err == nil {
		return reg
	}
	return net.JoinHostPort(reg, "443")
}

// opAddr is the address a failed dial was aimed at, else the registry.
func opAddr(op *net.OpError, reg string) string {
	if op.Addr != nil {
		return op.Addr.String()
	}
	return hostPort(reg)
}
