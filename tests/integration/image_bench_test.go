//go:build integration && bench

package integration

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestBenchImagePull: PullImage of the busybox test image from the loopback
// registry, removed before each pull; p50 of 5. Reports, asserts nothing.
func TestBenchImagePull(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	ic := h.imageClient()
	ctx := ctx30(t)
	const name = "docker.io/library/busybox:latest"
	var took []time.Duration
	for i := 0; i < 6; i++ { // the first is a warm-up
		if _, err := ic.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: name}}); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		if _, err := ic.PullImage(ctx, pullReq(name)); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			took = append(took, time.Since(begin))
		}
	}
	benchReport(fmt.Sprintf("PullImage busybox (remove, then pull) (n=%d after 1 warm-up): p50 %s  min %s  max %s\n",
		len(took), pct(took, 50), pct(took, 1), pct(took, 100)))
}

// benchImages is how many images TestBenchListImages stores.
const benchImages = 200

// TestBenchListImages: ListImages latency with 200 images in the store,
// twice: 200 distinct images (200 image IDs, one tag each: what a busy
// node holds, and what ListImages' per-image work scales with) and one
// image with 200 tags (the names alone). The images are made cheaply:
// one docker-archive per case, written from the busybox test image's
// layer with a distinct config per image, loaded with `cribd import`
// (the layer is unpacked once and shared). The first ListImages after the
// import is reported apart (it reads every image's config); then p50 of 20.
func TestBenchListImages(t *testing.T) {
	for _, tc := range []struct {
		name string
		tags [][]string // per image
	}{
		{"distinct images", benchTags(benchImages, 1)},
		{"one image, many tags", benchTags(1, benchImages)},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			h := start(t, Options{})
			archive := filepath.Join(t.TempDir(), "bench.tar")
			writeDockerArchive(t, archive, tc.tags)
			begin := time.Now()
			if out, errOut, err := h.cribdImport(archive); err != nil {
				t.Fatalf("cribd import: %v\n%s\n%s", err, out, errOut)
			}
			imported := time.Since(begin)

			ic := h.imageClient()
			ctx := ctx30(t)
			list := func() (time.Duration, int) {
				begin := time.Now()
				resp, err := ic.ListImages(ctx, &runtimeapi.ListImagesRequest{})
				if err != nil {
					t.Fatal(err)
				}
				return time.Since(begin), len(resp.Images)
			}
			first, n := list()
			if want := len(tc.tags); n != want {
				t.Fatalf("ListImages returned %d images, want %d", n, want)
			}
			var took []time.Duration
			for i := 0; i < 20; i++ {
				d, _ := list()
				took = append(took, d)
			}
			benchReport(fmt.Sprintf("ListImages, %s (%d images, %d names): first %s, then (n=%d) p50 %s  min %s  max %s; cribd import of them took %s\n",
				tc.name, n, len(tc.tags)*len(tc.tags[0]), first.Round(100*time.Microsecond), len(took),
				pct(took, 50), pct(took, 1), pct(took, 100), imported.Round(time.Millisecond)))
		})
	}
}

// benchTags names images × tagsEach references, image-major.
func benchTags(images, tagsEach int) [][]string {
	out := make([][]string, images)
	for i := range out {
		for j := 0; j < tagsEach; j++ {
			out[i] = append(out[i], fmt.Sprintf("docker.io/crib-bench/image-%03d:tag-%03d", i, j))
		}
	}
	return out
}

// writeDockerArchive writes a docker-archive (the `docker save` layout)
// at path holding one image per entry of tags, each named by its tags.
// Every image is the busybox test image (its layer, from the builder's OCI
// layout) with its own config: a label makes each image ID distinct.
func writeDockerArchive(t *testing.T, path string, tags [][]string) {
	t.Helper()
	buildImages(t)
	layout := filepath.Join(imagesDir(), "oci")
	blob := func(digest string) string {
		return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	}
	readJSON := func(p string, v any) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	readJSON(filepath.Join(layout, "index.json"), &index)
	var manifest struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	for _, m := range index.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == "busybox" {
			readJSON(blob(m.Digest), &manifest)
		}
	}
	if len(manifest.Layers) == 0 {
		t.Fatalf("no busybox image with layers in %s", layout)
	}
	var config map[string]any
	readJSON(blob(manifest.Config.Digest), &config)
	layer, err := os.ReadFile(blob(manifest.Layers[0].Digest))
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, body []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	const layerName = "layer.tar" // gzip-compressed; the transport detects it
	add(layerName, layer)
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var entries []entry
	cfg, _ := config["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
		config["config"] = cfg
	}
	for i, names := range tags {
		cfg["Labels"] = map[string]string{"crib.bench.image": fmt.Sprint(i)}
		body, err := json.Marshal(config)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("config-%03d.json", i)
		add(name, body)
		entries = append(entries, entry{Config: name, RepoTags: names, Layers: []string{layerName}})
	}
	body, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	add("manifest.json", body)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
