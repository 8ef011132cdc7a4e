//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ImageEntry is one image as `crictl images -o json` and `inspecti` print it.
type ImageEntry struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repoTags"`
	RepoDigests []string `json:"repoDigests"`
	Size        string   `json:"size"`
	UID         *struct {
		Value string `json:"value"`
	} `json:"uid"`
	Username string `json:"username"`
	Pinned   bool   `json:"pinned"`
}

// Images runs crictl images -o json.
func (h *Harness) Images() []ImageEntry {
	h.t.Helper()
	var list struct {
		Images []ImageEntry `json:"images"`
	}
	h.CrictlJSON(&list, "images", "-o", "json")
	return list.Images
}

func findImage(imgs []ImageEntry, tag string) *ImageEntry {
	for i := range imgs {
		for _, t := range imgs[i].RepoTags {
			if t == tag {
				return &imgs[i]
			}
		}
	}
	return nil
}

func TestImagePullListInspectRemove(t *testing.T) {
	h, _ := imageHarness(t, "", "")

	out := h.Crictl("pull", "busybox")
	if !strings.Contains(out, "sha256:") {
		t.Fatalf("crictl pull printed %q, want an image ID", out)
	}
	img := findImage(h.Images(), "docker.io/library/busybox:latest")
	if img == nil {
		t.Fatalf("busybox not listed as docker.io/library/busybox:latest: %+v", h.Images())
	}
	if !strings.HasPrefix(img.ID, "sha256:") || len(img.ID) != 71 {
		t.Errorf("image ID %q is not sha256:<64 hex>", img.ID)
	}
	if len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], "docker.io/library/busybox@sha256:") {
		t.Errorf("repo digests %v, want one docker.io/library/busybox@sha256:…", img.RepoDigests)
	}
	if img.Size == "" || img.Size == "0" {
		t.Errorf("size %q, want > 0", img.Size)
	}

	// inspecti by name, full ID, short ID (what crictl images prints) and repo digest.
	short := strings.TrimPrefix(img.ID, "sha256:")[:13]
	for _, ref := range []string{"busybox", "docker.io/library/busybox:latest", img.ID, strings.TrimPrefix(img.ID, "sha256:"), short, img.RepoDigests[0]} {
		var st struct {
			Status ImageEntry     `json:"status"`
			Info   map[string]any `json:"info"`
		}
		h.CrictlJSON(&st, "inspecti", "-o", "json", ref)
		if st.Status.ID != img.ID {
			t.Errorf("inspecti %s: id %q, want %q", ref, st.Status.ID, img.ID)
		}
		spec, _ := st.Info["imageSpec"].(map[string]any)
		if spec == nil || spec["config"] == nil {
			t.Errorf("inspecti %s: no info.imageSpec.config: %v", ref, st.Info)
		}
	}

	// Pull by digest: same image, the digest among its repo digests.
	h.Crictl("pull", img.RepoDigests[0])
	if n := len(h.Images()); n != 1 {
		t.Errorf("pull by digest of the same image: %d images listed, want 1", n)
	}

	// filter by name
	out = h.Crictl("images", "-q", "busybox")
	if strings.TrimSpace(out) != img.ID {
		t.Errorf("crictl images -q busybox = %q, want %q", out, img.ID)
	}
	if out := h.Crictl("images", "-q", "nosuchimage"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl images -q nosuchimage = %q, want nothing", out)
	}

	// imagefsinfo
	var fsinfo struct {
		Status struct {
			ImageFilesystems []struct {
				FsID struct {
					Mountpoint string `json:"mountpoint"`
				} `json:"fsId"`
				UsedBytes  struct{ Value string } `json:"usedBytes"`
				InodesUsed struct{ Value string } `json:"inodesUsed"`
			} `json:"imageFilesystems"`
			ContainerFilesystems []json.RawMessage `json:"containerFilesystems"`
		} `json:"status"`
	}
	h.CrictlJSON(&fsinfo, "imagefsinfo", "-o", "json")
	if len(fsinfo.Status.ImageFilesystems) != 1 || len(fsinfo.Status.ContainerFilesystems) != 1 {
		t.Fatalf("imagefsinfo: %+v", fsinfo)
	}
	ifs := fsinfo.Status.ImageFilesystems[0]
	if ifs.FsID.Mountpoint != filepath.Join(h.RootDir, "storage") || ifs.UsedBytes.Value == "" || ifs.UsedBytes.Value == "0" || ifs.InodesUsed.Value == "" || ifs.InodesUsed.Value == "0" {
		t.Errorf("image filesystem %+v: want mountpoint %s and non-zero usage", ifs, filepath.Join(h.RootDir, "storage"))
	}

	// rmi by short ID; a second rmi of a gone image is fine for kubelet.
	h.Crictl("rmi", short)
	if n := len(h.Images()); n != 0 {
		t.Errorf("after rmi: %d images listed", n)
	}
	var st struct {
		Status *ImageEntry `json:"status"`
	}
	if out, _, err := h.crictlRaw("inspecti", "-o", "json", "busybox"); err == nil {
		_ = json.Unmarshal([]byte(out), &st)
		if st.Status != nil && st.Status.ID != "" {
			t.Errorf("inspecti after rmi found %+v", st.Status)
		}
	}
	if _, err := os.Stat(filepath.Join(h.RootDir, "storage")); err != nil {
		t.Errorf("image store: %v", err)
	}
}
