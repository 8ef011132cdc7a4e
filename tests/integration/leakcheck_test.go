//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crib-runtime/crib/tests/harness"
)

// TestLeakChecker: the checker names each kind of leftover it promises to
// see. It needs no cribd.
func TestLeakChecker(t *testing.T) {
	h := start(t, Options{NoStart: true})
	before := h.snapshot()

	id := randomHex(32)
	veth := "cribitlk" + randomHex(2)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// The checker counts only this harness's pods (those its cribd logged
	// or keeps a record of) and veths on its bridge.
	if err := os.MkdirAll(filepath.Join(h.RootDir, "pods", id), 0o755); err != nil {
		t.Fatal(err)
	}
	run("ip", "netns", "add", "crib-"+id)
	defer exec.Command("ip", "netns", "delete", "crib-"+id).Run()
	run("ip", "link", "add", h.Bridge, "type", "bridge")
	defer exec.Command("ip", "link", "del", h.Bridge).Run()
	run("ip", "link", "add", veth, "type", "veth", "peer", "name", veth+"p")
	defer exec.Command("ip", "link", "del", veth).Run()
	run("ip", "link", "set", veth, "master", h.Bridge)
	cg := filepath.Join("/sys/fs/cgroup/pids", h.CgroupParent, id)
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cg)
	lease := filepath.Join(h.IPAMDataDir, "cribit", podPrefix+"77")
	if err := os.MkdirAll(filepath.Dir(lease), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lease, []byte(id+"\neth0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(lease), "last_reserved_ip.0"), []byte(podPrefix+"77"), 0o644); err != nil {
		t.Fatal(err)
	}

	// crib's own state: a pod's run dir, a storage container and a layer
	// no image or container uses.
	if err := os.MkdirAll(filepath.Join(h.RunDir, "pods", id), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(filepath.Join(h.RunDir, "pods", id))
	store := filepath.Join(h.RootDir, "storage")
	for path, body := range map[string]string{
		"overlay-containers/containers.json": `[{"id":"` + id + `","names":["app_` + id + `_0"],"layer":"rw` + id + `"}]`,
		"overlay-layers/layers.json":         `[{"id":"rw` + id + `","parent":"base"},{"id":"base"},{"id":"orphan` + id + `"}]`,
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(store, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(store, path), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	defer os.RemoveAll(store)

	got := strings.Join(leaks(before, h.snapshot()), "\n")
	for _, want := range []string{
		kindNetNS + ": netns crib-" + id,
		kindMount + ": mount /run/netns/crib-" + id,
		kindVeth + ": veth ",
		kindCgroup + ": cgroup dir " + cg,
		kindIPAM + ": IP lease " + lease,
		harness.KindRunFile + ": run_dir file " + filepath.Join(h.RunDir, "pods", id),
		harness.KindStoreContainer + ": storage container " + id,
		harness.KindStoreLayer + ": storage layer orphan" + id,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("leaks:\n%s\nwant one starting %q", got, want)
		}
	}
	if strings.Contains(got, "last_reserved_ip") {
		t.Errorf("leaks:\n%s\nlist host-local's last_reserved_ip, which is no lease", got)
	}
	os.Remove(lease)
}
