//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeOCILayout writes a one-layer OCI image layout at dir, tagged tag,
// whose layer holds the given tar entries (bodies for regular files).
func writeOCILayout(t *testing.T, dir, tag string, entries []tar.Header, bodies map[string]string) {
	t.Helper()
	var layer bytes.Buffer
	gz := gzip.NewWriter(&layer)
	tw := tar.NewWriter(gz)
	var diff bytes.Buffer // the uncompressed tar, for the diff ID
	tee := tar.NewWriter(&diff)
	for _, hdr := range entries {
		body := bodies[hdr.Name]
		hdr.Size = int64(len(body))
		for _, w := range []*tar.Writer{tw, tee} {
			h := hdr
			if err := w.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []interface{ Close() error }{tw, gz, tee} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	blob := func(b []byte) string {
		d := fmt.Sprintf("%x", sha256.Sum256(b))
		p := filepath.Join(dir, "blobs", "sha256", d)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return "sha256:" + d
	}
	layerDigest := blob(layer.Bytes())
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/x"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{fmt.Sprintf("sha256:%x", sha256.Sum256(diff.Bytes()))}},
	})
	configDigest := blob(config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layerDigest, "size": layer.Len()}},
	})
	manifestDigest := blob(manifest)
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": len(manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": tag},
		}},
	})
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestImageEscapingLayer: layers whose tar entries try to write outside
// the layer: `../` paths, a file through an absolute symlink, a hard link
// to a host file. Nothing may land outside the store.
func TestImageEscapingLayer(t *testing.T) {
	h, reg := imageHarness(t, "", "")
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(victim, "host-file")
	if err := os.WriteFile(hostFile, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 40)
	cases := []struct {
		name     string
		entries  []tar.Header
		bodies   map[string]string
		mustFail bool
	}{
		{"dotdot", []tar.Header{
			{Name: up + strings.TrimPrefix(victim, "/") + "/dotdot", Typeflag: tar.TypeReg, Mode: 0o644},
		}, map[string]string{up + strings.TrimPrefix(victim, "/") + "/dotdot": "escaped"}, false}, // storage confines it to the layer
		{"symlink", []tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: victim, Mode: 0o777},
			{Name: "link/through-symlink", Typeflag: tar.TypeReg, Mode: 0o644},
		}, map[string]string{"link/through-symlink": "escaped"}, false},
		{"hardlink", []tar.Header{
			{Name: "hard", Typeflag: tar.TypeLink, Linkname: up + strings.TrimPrefix(hostFile, "/"), Mode: 0o644},
		}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeOCILayout(t, dir, "evil", tc.entries, tc.bodies)
			if out, err := exec.Command("skopeo", "copy", "-q", "--dest-tls-verify=false",
				"oci:"+dir+":evil", "docker://"+reg.Addr+"/library/evil-"+tc.name+":1").CombinedOutput(); err != nil {
				t.Fatalf("push crafted image: %v: %s", err, out)
			}
			_, stderr, err := h.crictlRaw("pull", "evil-"+tc.name+":1")
			if tc.mustFail && err == nil {
				t.Errorf("pull of a layer escaping by %s succeeded", tc.name)
			}
			if err != nil {
				t.Logf("pull refused: %s", strings.TrimSpace(stderr))
				if tc.mustFail && !(strings.Contains(stderr, "code = FailedPrecondition") &&
					strings.Contains(stderr, "docker.io/library/evil-"+tc.name+":1: layer sha256:") &&
					strings.Contains(stderr, "could not be unpacked")) {
					t.Errorf("pull refused with %q; want FailedPrecondition naming the image and the layer", stderr)
				}
				if findImage(h.Images(), "docker.io/library/evil-"+tc.name+":1") != nil {
					t.Errorf("failed pull left the image listed")
				}
			}
			ents, _ := os.ReadDir(victim)
			for _, e := range ents {
				if e.Name() != "host-file" {
					t.Errorf("layer wrote %s outside the store", filepath.Join(victim, e.Name()))
				}
			}
			if b, _ := os.ReadFile(hostFile); string(b) != "host" {
				t.Errorf("host file changed: %q", b)
			}
		})
	}
}
