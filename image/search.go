package image

import (
	"fmt"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// isShortName reports whether name names no registry ("busybox",
// "library/busybox:1"), as a registry host has a dot or a port, or is
// localhost.
func isShortName(name string) bool {
	first, _, found := strings.Cut(name, "/")
	if !found {
		return true
	}
	return !strings.ContainsAny(first, ".:") && first != "localhost"
}

// candidates lists the references a name may mean, in the order they are
// tried. A fully qualified name means itself. A short name means itself
// under each of registries.conf's unqualified-search-registries, or, when
// none are configured, what kubelet and crictl expect: docker.io.
func candidates(name string, search []string) ([]reference.Named, error) {
	if !isShortName(name) || len(search) == 0 {
		named, err := Normalize(name)
		if err != nil {
			return nil, err
		}
		return []reference.Named{named}, nil
	}
	if _, err := Normalize(name); err != nil {
		return nil, err // quote the name as given
	}
	out := make([]reference.Named, 0, len(search))
	for _, reg := range search {
		named, err := Normalize(reg + "/" + name)
		if err != nil {
			return nil, fmt.Errorf("unqualified-search registry %q with %q: %w", reg, name, err)
		}
		out = append(out, named)
	}
	return out, nil
}

// searchRegistries reads unqualified-search-registries from the
// registries.conf the service uses (none when it names none).
func searchRegistries(sys *types.SystemContext) ([]string, error) {
	regs, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
	if err != nil {
		return nil, fmt.Errorf("registries.conf: %w", err)
	}
	return regs, nil
}
