//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// imageClient is a CRI ImageService client on the harness's socket.
func (h *Harness) imageClient() runtimeapi.ImageServiceClient {
	return runtimeapi.NewImageServiceClient(h.conn())
}

func pullReq(name string) *runtimeapi.PullImageRequest {
	return &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: name}}
}

// TestImageBadInput: each kind of bad pull gets its own code and a message
// naming the registry or quoting the input; an unknown image's status is
// an empty response.
func TestImageBadInput(t *testing.T) {
	down := freeAddr(t) // nobody listens there
	extra := fmt.Sprintf(`
[[registry]]
prefix = "down.test"
location = %q
insecure = true

[[registry]]
prefix = "blocked.test"
location = "blocked.test"
blocked = true
`, down)
	h, reg := imageHarness(t, extra, "")
	ic := h.imageClient()
	ctx := ctx30(t)

	st, err := ic.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "docker.io/library/nosuch:1"}})
	if err != nil || st.GetImage() != nil {
		t.Errorf("ImageStatus of an unknown image: %v, %v; want an empty response", st, err)
	}

	_, err = ic.PullImage(ctx, pullReq("busybox:nosuchtag"))
	wantCode(t, "pull of a missing tag", err, codes.NotFound, "manifest unknown")
	if err != nil && !strings.Contains(err.Error(), "docker.io") {
		t.Errorf("pull of a missing tag: %v does not name the registry", err)
	}
	_, err = ic.PullImage(ctx, pullReq("down.test/foo:1"))
	wantCode(t, "pull from an unreachable registry", err, codes.Unavailable, down)
	_, err = ic.PullImage(ctx, pullReq("Not A/Reference::x"))
	wantCode(t, "pull of an unparsable reference", err, codes.InvalidArgument, `"Not A/Reference::x"`)
	_, err = ic.PullImage(ctx, pullReq("blocked.test/foo:1"))
	wantCode(t, "pull from a blocked registry", err, codes.FailedPrecondition, "blocked.test")
	_, err = ic.PullImage(ctx, pullReq(""))
	wantCode(t, "pull of nothing", err, codes.InvalidArgument, "image")

	// crictl shows the same.
	_, stderr, err := h.crictlRaw("pull", "busybox:nosuchtag")
	if err == nil || !strings.Contains(stderr, "NotFound") || !strings.Contains(stderr, "manifest unknown") {
		t.Errorf("crictl pull busybox:nosuchtag: %v: %s", err, stderr)
	}
	if imgs := h.Images(); len(imgs) != 0 {
		t.Errorf("failed pulls left images: %+v", imgs)
	}
	_ = reg
}

// TestImageAuth: a registry with htpasswd auth. With no credentials in
// the request, the configured auth file is used; crictl --creds and the
// base64 auth form work; wrong credentials fail naming the registry.
func TestImageAuth(t *testing.T) {
	secure := startRegistry(t, RegistryOptions{Users: map[string]string{"crib": "s3cret"}})
	// Pulled by its own address: the libraries (rightly) never send a
	// request's credentials to a location other than the image's registry.
	extra := fmt.Sprintf("\n[[registry]]\nlocation = %q\ninsecure = true\n", secure.Addr)
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf(`{"auths": {%q: {"auth": "Y3JpYjpzM2NyZXQ="}}}`, secure.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	h, _ := imageHarness(t, extra, fmt.Sprintf("auth_file = %q\n", authFile))
	ctx := ctx30(t)
	ic := h.imageClient()
	img := secure.Addr + "/library/busybox:latest"

	if _, err := ic.PullImage(ctx, pullReq(img)); err != nil {
		t.Fatalf("pull with credentials from image.auth_file: %v", err)
	}
	h.Crictl("rmi", img)
	_, stderr, err := h.crictlRaw("pull", "--creds", "crib:wrong", img)
	if err == nil || !strings.Contains(stderr, "refused authentication") || !strings.Contains(stderr, secure.Addr) {
		t.Errorf("crictl pull --creds crib:wrong: %v: %s; want a refusal naming %s", err, stderr, secure.Addr)
	}
	h.Crictl("pull", "--creds", "crib:s3cret", img)
	if findImage(h.Images(), img) == nil {
		t.Fatalf("%s not listed after an authenticated pull", img)
	}
	h.Crictl("rmi", img)
	_, err = ic.PullImage(ctx, &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: img},
		Auth:  &runtimeapi.AuthConfig{Auth: "Y3JpYjpzM2NyZXQ="}, // crib:s3cret
	})
	if err != nil {
		t.Errorf("pull with auth.auth: %v", err)
	}
}

// TestImageMirrorAuth: a mirror and a location rewrite that send the pull
// to a registry with htpasswd auth take that host's entry in
// image.auth_file, whatever credentials the request carries for the
// image's own registry (those are never sent to another host).
func TestImageMirrorAuth(t *testing.T) {
	secure := startRegistry(t, RegistryOptions{Users: map[string]string{"crib": "s3cret"}})
	// The mirrored registry's own location listens nowhere: the pull
	// works only through the mirror.
	extra := fmt.Sprintf("\n[[registry]]\nprefix = \"mirrored.test\"\nlocation = %q\ninsecure = true\n"+
		"[[registry.mirror]]\nlocation = %q\ninsecure = true\n"+
		"\n[[registry]]\nprefix = \"rewritten.test\"\nlocation = %q\ninsecure = true\n", freeAddr(t), secure.Addr, secure.Addr)
	authFile := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf(`{"auths": {%q: {"auth": "Y3JpYjpzM2NyZXQ="}}}`, secure.Addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	h, _ := imageHarness(t, extra, fmt.Sprintf("auth_file = %q\n", authFile))
	ctx := ctx30(t)
	ic := h.imageClient()
	for _, tc := range []struct {
		name string
		auth *runtimeapi.AuthConfig // meant for the image's registry
	}{
		{"no credentials", nil},
		{"username and password", &runtimeapi.AuthConfig{Username: "upstream-user", Password: "upstream-password"}},
		{"registry token", &runtimeapi.AuthConfig{RegistryToken: "upstream-token"}},
	} {
		for _, img := range []string{"mirrored.test/library/busybox:latest", "rewritten.test/library/busybox:latest"} {
			_, err := ic.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: img}, Auth: tc.auth})
			if err != nil {
				t.Errorf("%s, %s: pull through %s with its auth-file credentials: %v", tc.name, img, secure.Addr, err)
				continue
			}
			h.Crictl("rmi", img)
		}
	}
}

// TestImagePullCancelled: a pull whose caller gives up leaves nothing
// listed, and the next pull of the image works.
func TestImagePullCancelled(t *testing.T) {
	slow := startSlowProxy(t, startRegistry(t, RegistryOptions{}).Addr)
	extra := fmt.Sprintf("\n[[registry]]\nprefix = \"slow.test\"\nlocation = %q\ninsecure = true\n", slow.Addr)
	h, _ := imageHarness(t, extra, "")
	ic := h.imageClient()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := ic.PullImage(ctx, pullReq("slow.test/library/busybox:latest"))
		errc <- err
	}()
	slow.WaitBlob(t)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled pull succeeded")
	}
	// cribd stops the pull when its only caller left; nothing is listed
	// while the held blob is still outstanding, nor after.
	if imgs := h.Images(); len(imgs) != 0 {
		t.Errorf("cancelled pull left images listed: %+v", imgs)
	}
	slow.Release()
	time.Sleep(0) // nothing to wait for: the pull is gone
	if imgs := h.Images(); len(imgs) != 0 {
		t.Errorf("cancelled pull left images listed after release: %+v", imgs)
	}
	if _, err := ic.PullImage(ctx30(t), pullReq("slow.test/library/busybox:latest")); err != nil {
		t.Errorf("pull after a cancelled one: %v", err)
	}
}

// TestImagePullMerged: concurrent pulls of one image download it once;
// pulls of different images run in parallel.
func TestImagePullMerged(t *testing.T) {
	slow := startSlowProxy(t, startRegistry(t, RegistryOptions{}).Addr)
	extra := fmt.Sprintf("\n[[registry]]\nprefix = \"slow.test\"\nlocation = %q\ninsecure = true\n", slow.Addr)
	h, _ := imageHarness(t, extra, "")
	ic := h.imageClient()
	ctx := ctx30(t)

	const n = 4
	errc := make(chan error, n+1)
	ids := make(chan string, n)
	for range n {
		go func() {
			resp, err := ic.PullImage(ctx, pullReq("slow.test/library/busybox:latest"))
			ids <- resp.GetImageRef()
			errc <- err
		}()
	}
	slow.WaitBlob(t)
	// A different image goes past the held one.
	if _, err := ic.PullImage(ctx, pullReq("gcr.io/k8s-staging-cri-tools/test-image-1")); err != nil {
		t.Fatalf("pull of another image while one is held: %v", err)
	}
	slow.Release()
	first := ""
	for range n {
		if err := <-errc; err != nil {
			t.Errorf("merged pull: %v", err)
		}
		id := <-ids
		if first == "" {
			first = id
		} else if id != first {
			t.Errorf("merged pulls returned %s and %s", first, id)
		}
	}
	if got := slow.ManifestGets(); got != 1 {
		t.Errorf("%d concurrent pulls fetched the manifest %d times, want once", n, got)
	}
}
