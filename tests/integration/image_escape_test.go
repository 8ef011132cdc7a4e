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

// ociLayer is one layer of a crafted image: tar entries, and the bodies of
// its regular files by name.
type ociLayer struct {
	entries []tar.Header
	bodies  map[string]string
}

// writeOCILayout writes an OCI image layout at dir, tagged tag, with the
// given layers (bottom first); it returns the layers' digests.
func writeOCILayout(t *testing.T, dir, tag string, layers ...ociLayer) []string {
	t.Helper()
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
	var digests, diffIDs []string
	var descs []any
	for _, l := range layers {
		compressed, diff := tarLayer(t, l)
		d := blob(compressed)
		digests = append(digests, d)
		diffIDs = append(diffIDs, fmt.Sprintf("sha256:%x", sha256.Sum256(diff)))
		descs = append(descs, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": len(compressed)})
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/x"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	configDigest := blob(config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": len(config)},
		"layers":        descs,
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
	return digests
}

// tarLayer returns a layer's gzipped tar and the plain tar (for its diff ID).
func tarLayer(t *testing.T, l ociLayer) (compressed, plain []byte) {
	t.Helper()
	var layer bytes.Buffer
	gz := gzip.NewWriter(&layer)
	tw := tar.NewWriter(gz)
	var diff bytes.Buffer
	tee := tar.NewWriter(&diff)
	for _, hdr := range l.entries {
		body := l.bodies[hdr.Name]
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
	return layer.Bytes(), diff.Bytes()
}

// TestImageEscapingLayer: layers whose tar entries try to write outside
// the layer: `../` paths, a file through an absolute symlink or through a
// relative one that climbs out, a hard link to a host file. Each pull
// (and each `cribd import` of the same image) fails with
// FailedPrecondition naming the image, the layer and the entry; nothing
// lands outside the store and neither the image nor the layer is stored.
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
	inVictim := up + strings.TrimPrefix(victim, "/")
	cases := []struct {
		name    string
		entries []tar.Header
		bodies  map[string]string
		entry   string // the entry the error must name
	}{
		{"dotdot", []tar.Header{
			{Name: "ok", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: inVictim + "/dotdot", Typeflag: tar.TypeReg, Mode: 0o644},
		}, map[string]string{inVictim + "/dotdot": "escaped"}, inVictim + "/dotdot"},
		{"symlink", []tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: victim, Mode: 0o777},
			{Name: "link/through-symlink", Typeflag: tar.TypeReg, Mode: 0o644},
		}, map[string]string{"link/through-symlink": "escaped"}, "link/through-symlink"},
		{"relsymlink", []tar.Header{
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "d/up", Typeflag: tar.TypeSymlink, Linkname: up, Mode: 0o777},
			{Name: "d/up" + victim + "/through-relative", Typeflag: tar.TypeReg, Mode: 0o644},
		}, nil, "d/up" + victim + "/through-relative"},
		{"hardlink", []tar.Header{
			{Name: "hard", Typeflag: tar.TypeLink, Linkname: up + strings.TrimPrefix(hostFile, "/"), Mode: 0o644},
		}, nil, "hard"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			layer := writeOCILayout(t, dir, "evil", ociLayer{tc.entries, tc.bodies})[0]
			name := "docker.io/library/evil-" + tc.name + ":1"
			if out, err := exec.Command("skopeo", "copy", "-q", "--dest-tls-verify=false",
				"oci:"+dir+":evil", "docker://"+reg.Addr+"/library/evil-"+tc.name+":1").CombinedOutput(); err != nil {
				t.Fatalf("push crafted image: %v: %s", err, out)
			}
			_, stderr, err := h.crictlRaw("pull", "evil-"+tc.name+":1")
			if err == nil {
				t.Errorf("pull of a layer escaping by %s succeeded", tc.name)
			} else if want := fmt.Sprintf("code = FailedPrecondition desc = pull %s: refused: layer %s: entry %q ", name, layer, tc.entry); !strings.Contains(strings.ReplaceAll(stderr, `\"`, `"`), want) { // crictl quotes the message
				t.Errorf("pull refused with %q; want it to contain %q", stderr, want)
			}

			archive := filepath.Join(dir, "evil.tar")
			if out, err := exec.Command("skopeo", "copy", "-q", "oci:"+dir+":evil", "oci-archive:"+archive+":"+name).CombinedOutput(); err != nil {
				t.Fatalf("archive crafted image: %v: %s", err, out)
			}
			if _, stderr, err := h.cribdImport(archive); err == nil {
				t.Errorf("import of a layer escaping by %s succeeded", tc.name)
			} else if want := fmt.Sprintf("layer %s: entry %q ", layer, tc.entry); !strings.Contains(stderr, want) {
				t.Errorf("import refused with %q; want it to contain %q", stderr, want)
			}

			if findImage(h.Images(), name) != nil {
				t.Errorf("failed pull left the image listed")
			}
			for _, f := range []string{"overlay-layers/layers.json", "overlay-images/images.json"} {
				b, err := os.ReadFile(filepath.Join(h.RootDir, "storage", f))
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(layer)) || bytes.Contains(b, []byte("evil-"+tc.name)) {
					t.Errorf("failed pull left the layer or image in the store: %s: %s", f, b)
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

// TestImageFailedPullLeavesNoLayers: a two-layer image whose second layer
// is refused. The library has already stored the first layer when the
// second fails; cribd removes it, so the failed pull leaves nothing in the
// store.
func TestImageFailedPullLeavesNoLayers(t *testing.T) {
	h, reg := imageHarness(t, "", "")
	dir := t.TempDir()
	layers := writeOCILayout(t, dir, "half", ociLayer{
		entries: []tar.Header{{Name: "good", Typeflag: tar.TypeReg, Mode: 0o644}},
		bodies:  map[string]string{"good": "a layer the pull stores before the next one fails"},
	}, ociLayer{
		entries: []tar.Header{{Name: "../../escapes", Typeflag: tar.TypeReg, Mode: 0o644}},
	})
	if out, err := exec.Command("skopeo", "copy", "-q", "--dest-tls-verify=false",
		"oci:"+dir+":half", "docker://"+reg.Addr+"/library/half-evil:1").CombinedOutput(); err != nil {
		t.Fatalf("push crafted image: %v: %s", err, out)
	}
	if _, stderr, err := h.crictlRaw("pull", "half-evil:1"); err == nil {
		t.Fatal("pull of an image with an escaping second layer succeeded")
	} else if !strings.Contains(stderr, layers[1]) {
		t.Errorf("pull refused with %q; want it to name layer %s", stderr, layers[1])
	}
	b, err := os.ReadFile(filepath.Join(h.RootDir, "storage", "overlay-layers", "layers.json"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(layers[0])) {
		t.Errorf("the failed pull's first layer %s is still in the store: %s", layers[0], b)
	}
}
