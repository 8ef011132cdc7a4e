//go:build integration

package integration

import (
	"testing"
)

// TestImagePinnedPrune: images named in image.pinned_images (and the pause
// image) are reported pinned and survive `crictl rmi --prune`; others go.
func TestImagePinnedPrune(t *testing.T) {
	h, _ := imageHarness(t, "", "pinned_images = [\"busybox\"]\n")
	h.Crictl("pull", "busybox")
	h.Crictl("pull", "gcr.io/k8s-staging-cri-tools/test-image-1")
	h.Crictl("pull", "gcr.io/k8s-staging-cri-tools/test-image-user-username")

	imgs := h.Images()
	if len(imgs) != 3 {
		t.Fatalf("%d images listed, want 3: %+v", len(imgs), imgs)
	}
	bb := findImage(imgs, "docker.io/library/busybox:latest")
	if bb == nil || !bb.Pinned {
		t.Fatalf("busybox %+v: want pinned", bb)
	}
	if img := findImage(imgs, "gcr.io/k8s-staging-cri-tools/test-image-1:latest"); img == nil || img.Pinned {
		t.Errorf("test-image-1 %+v: want listed and not pinned", img)
	}
	if img := findImage(imgs, "gcr.io/k8s-staging-cri-tools/test-image-user-username:latest"); img == nil || img.Username != "www-data" || img.UID != nil {
		t.Errorf("test-image-user-username %+v: want username www-data and no uid", img)
	}

	if _, stderr, err := h.crictlRaw("rmi", "--prune"); err != nil {
		t.Fatalf("crictl rmi --prune: %v: %s", err, stderr)
	}
	imgs = h.Images()
	if len(imgs) != 1 || findImage(imgs, "docker.io/library/busybox:latest") == nil {
		t.Errorf("after rmi --prune: %+v; want only the pinned busybox", imgs)
	}
}
