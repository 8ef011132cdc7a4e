//go:build integration

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cribdImport runs `cribd import --config <harness config> args...`.
func (h *Harness) cribdImport(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(filepath.Join(binDir(), "cribd"), append([]string{"import", "--config", h.ConfigPath}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// skopeoArchive copies busybox from reg into an archive ("oci-archive" or
// "docker-archive") at path, naming the image name in it.
func skopeoArchive(t *testing.T, reg *Registry, transport, path, name string) {
	t.Helper()
	out, err := exec.Command("skopeo", "copy", "-q", "--src-tls-verify=false",
		"docker://"+reg.Addr+"/library/busybox:latest", transport+":"+path+":"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy to %s: %v: %s", transport, err, out)
	}
}

// TestImageImport: `cribd import` loads an oci-archive and a docker-archive
// into the store of a running cribd, under the archives' names (which the
// registry does not have, so nothing is pulled); crictl lists them and a
// container runs from one. A file that is no archive fails naming it.
func TestImageImport(t *testing.T) {
	h, reg := imageHarness(t, "", "")
	dir := t.TempDir()
	const ociName, dockerName = "docker.io/library/imported-oci:1", "docker.io/library/imported-docker:1"
	ociTar, dockerTar := filepath.Join(dir, "oci.tar"), filepath.Join(dir, "docker.tar")
	skopeoArchive(t, reg, "oci-archive", ociTar, ociName)
	skopeoArchive(t, reg, "docker-archive", dockerTar, "imported-docker:1") // short name, as `docker save` writes it

	out, errOut, err := h.cribdImport(ociTar, dockerTar)
	if err != nil {
		t.Fatalf("cribd import: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	printed := map[string]string{} // name → ID
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, id, _ := strings.Cut(line, " ")
		printed[name] = id
	}
	imgs := h.Images()
	for _, name := range []string{ociName, dockerName} {
		img := findImage(imgs, name)
		if img == nil {
			t.Fatalf("crictl images does not list %s after import: %+v", name, imgs)
		}
		if printed[name] != img.ID {
			t.Errorf("cribd import printed %q for %s; crictl lists ID %s", printed[name], name, img.ID)
		}
		if len(img.RepoDigests) == 0 {
			t.Errorf("%s: no repo digests", name)
		}
	}

	pod := podConfig("imported")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	podID := h.RunPod(pod)
	cfg := shellContainer("imported", "echo from-archive")
	cfg["image"] = map[string]any{"image": dockerName}
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	if st := h.waitContainerState(id, "CONTAINER_EXITED"); st.Status.ExitCode != 0 {
		t.Errorf("container from the imported image: %+v", st.Status)
	}
	if logs, _, _ := h.crictlRaw("logs", id); !strings.Contains(logs, "from-archive") {
		t.Errorf("container log %q, want from-archive", logs)
	}
	h.Crictl("rm", id)
	h.Crictl("stopp", podID)
	h.Crictl("rmp", podID)

	junk := filepath.Join(dir, "junk.tar")
	if err := os.WriteFile(junk, []byte("not an archive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := h.cribdImport(junk); err == nil || !strings.Contains(errOut, junk) || !strings.Contains(errOut, "neither a docker-archive") {
		t.Errorf("import of a non-archive: err %v, stdout %q, stderr %q; want a failure naming %s", err, out, errOut, junk)
	}
}

// TestImageRemoveInUse: removing the image a container was created from
// is FailedPrecondition naming the container; once the container is
// removed, the image goes.
func TestImageRemoveInUse(t *testing.T) {
	h, podID, pod := containerPod(t)
	id := h.CreateContainer(podID, shellContainer("user", "true"), pod)
	img := findImage(h.Images(), "docker.io/library/busybox:latest")
	if img == nil {
		t.Fatal("busybox not listed")
	}

	ic := h.imageClient()
	for _, ref := range []string{"busybox", img.ID} {
		_, err := ic.RemoveImage(ctx30(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		wantCode(t, "RemoveImage "+ref+" while a container uses it", err, codes.FailedPrecondition, id)
	}
	_, stderr, err := h.crictlRaw("rmi", "busybox")
	if err == nil || !strings.Contains(stderr, id) {
		t.Errorf("crictl rmi of a used image: err %v, stderr %q; want a failure naming container %s", err, stderr, id)
	}
	t.Logf("crictl rmi refused: %s", strings.TrimSpace(stderr))
	if findImage(h.Images(), "docker.io/library/busybox:latest") == nil {
		t.Fatal("refused rmi removed the image anyway")
	}

	h.Crictl("rm", id)
	h.Crictl("rmi", "busybox")
	if findImage(h.Images(), "docker.io/library/busybox:latest") != nil {
		t.Error("rmi after the container was removed left the image")
	}
	h.Crictl("stopp", podID)
	h.Crictl("rmp", podID)
}
