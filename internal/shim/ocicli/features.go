package ocicli

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features is what a runtime can do of what crib's pods may ask for.
type Features struct {
	// UserNamespaces: the runtime makes user namespaces and idmapped
	// mounts (a pod user namespace's binds are idmapped).
	UserNamespaces bool
	// RecursiveReadOnlyMounts: the runtime knows the "rro" mount option.
	RecursiveReadOnlyMounts bool
}

// featuresTimeout bounds the runtime's "features" command at cribd's start.
const featuresTimeout = 5 * time.Second

// ProbeFeatures asks the runtime at path for its features (the OCI
// "features" command, runc 1.1 and later; crun has it from 1.9). A runtime
// without the command is an error: the caller takes it to have none.
func ProbeFeatures(path string) (Features, error) {
	ctx, cancel := context.WithTimeout(context.Background(), featuresTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "features").Output()
	if err != nil {
		return Features{}, fmt.Errorf("%s features: %w", path, err)
	}
	return parseFeatures(out)
}

// parseFeatures reads the output of a runtime's "features" command.
func parseFeatures(out []byte) (Features, error) {
	var f features.Features
	if err := json.Unmarshal(out, &f); err != nil {
		return Features{}, fmt.Errorf("decode runtime features: %w", err)
	}
	var got Features
	got.RecursiveReadOnlyMounts = slices.Contains(f.MountOptions, "rro")
	if l := f.Linux; l != nil && slices.Contains(l.Namespaces, "user") {
		m := l.MountExtensions
		got.UserNamespaces = m != nil && m.IDMap != nil && m.IDMap.Enabled != nil && *m.IDMap.Enabled
	}
	return got, nil
}
