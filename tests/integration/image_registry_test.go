//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/crib-runtime/crib/tests/harness"
)

// The image tests' registries (harness.StartRegistry).

// Registry is one running docker-registry.
type Registry = harness.Registry

// RegistryOptions change one registry.
type RegistryOptions = harness.RegistryOptions

func imagesDir() string            { return harness.ImagesDir() }
func buildImages(t *testing.T)     { t.Helper(); harness.BuildImages(t) }
func freeAddr(t *testing.T) string { t.Helper(); return harness.FreeAddr(t) }

// startRegistry starts a registry for the test; t.Cleanup kills it.
func startRegistry(t *testing.T, opts RegistryOptions) *Registry {
	t.Helper()
	return harness.StartRegistry(t, opts)
}

// mirroredRegistries are the public registries the tests' images come from.
var mirroredRegistries = harness.MirroredRegistries

// registriesConf renders a registries.conf rewriting the public
// registries to addr, plus extra TOML.
func registriesConf(addr, extra string) string { return harness.RegistriesConf(addr, extra) }

// imageHarness starts a registry and a cribd whose registries.conf mirrors
// the public registries to it. extraConf is added to registries.conf,
// extraImage to crib.toml's [image] section.
func imageHarness(t *testing.T, extraConf, extraImage string) (*Harness, *Registry) {
	t.Helper()
	reg := startRegistry(t, RegistryOptions{})
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, []byte(registriesConf(reg.Addr, extraConf)), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{ExtraConfig: fmt.Sprintf("\n[image]\nregistries_conf = %q\n%s", conf, extraImage)})
	return h, reg
}
