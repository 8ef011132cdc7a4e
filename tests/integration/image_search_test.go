//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageUnqualifiedSearch: with unqualified-search-registries in
// registries.conf, a short name is pulled from (and found in) the first
// registry that has it.
func TestImageUnqualifiedSearch(t *testing.T) {
	empty := startRegistry(t, RegistryOptions{Empty: true})
	reg := startRegistry(t, RegistryOptions{})
	conf := filepath.Join(t.TempDir(), "registries.conf")
	body := fmt.Sprintf("unqualified-search-registries = [%q, %q]\n", empty.Addr, reg.Addr)
	for _, addr := range []string{empty.Addr, reg.Addr} {
		body += fmt.Sprintf("\n[[registry]]\nlocation = %q\ninsecure = true\n", addr)
	}
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, Options{ExtraConfig: fmt.Sprintf("\n[image]\nregistries_conf = %q\n", conf)})

	h.Crictl("pull", "library/busybox")
	want := reg.Addr + "/library/busybox"
	if out := h.Crictl("images"); !strings.Contains(out, want) {
		t.Errorf("crictl images does not list %s:\n%s", want, out)
	}
	if out := h.Crictl("inspecti", "library/busybox"); !strings.Contains(out, want) {
		t.Errorf("the short name does not find the pulled image:\n%s", out)
	}
	_, errOut, err := h.crictlRaw("pull", "library/nothere")
	if err == nil || !strings.Contains(errOut, "nothere") {
		t.Errorf("pull of a name no search registry has: err %v\n%s", err, errOut)
	}
	h.Crictl("rmi", "library/busybox")
}
