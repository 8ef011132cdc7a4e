package image

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/crib-runtime/crib/api/errdefs"
)

// idLen is the length of a full image ID: the config digest's hex.
const idLen = 64

var hexRE = regexp.MustCompile(`^[0-9a-f]+$`)

// ID is a full image ID: the hex of the image's config digest, the same
// value the store uses as the image's key. Only the constructors below make
// one, so an ID is never a name or a prefix by accident.
type ID struct{ hex string }

// ParseID accepts a full ID as "<64 hex>" or "sha256:<64 hex>".
func ParseID(s string) (ID, error) {
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) != idLen || !hexRE.MatchString(h) {
		return ID{}, errdefs.InvalidArgument("%q is not a full image ID (64 hex digits, optionally prefixed sha256:)", s)
	}
	return ID{hex: h}, nil
}

// idFromStore wraps an ID the store returned.
func idFromStore(s string) (ID, error) {
	id, err := ParseID(s)
	if err != nil {
		return ID{}, fmt.Errorf("store returned a bad image ID: %w", err)
	}
	return id, nil
}

// IsZero reports whether id was never set.
func (id ID) IsZero() bool { return id.hex == "" }

// StoreKey is the ID as the image store names it (bare hex).
func (id ID) StoreKey() string { return id.hex }

// CRIString is the ID as CRI clients see it: "sha256:<hex>", which is what
// kubelet and crictl compare against (containerd reports the same).
func (id ID) CRIString() string { return "sha256:" + id.hex }

// String is the CRI form.
func (id ID) String() string { return id.CRIString() }

// idPrefix reports whether s looks like (a prefix of) an image ID, with or
// without "sha256:": what `crictl images` prints is 13 hex digits.
func idPrefix(s string) (string, bool) {
	h := strings.TrimPrefix(s, "sha256:")
	if h == "" || len(h) > idLen || !hexRE.MatchString(h) {
		return "", false
	}
	return h, true
}
