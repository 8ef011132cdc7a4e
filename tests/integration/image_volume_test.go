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

	"github.com/crib-runtime/crib/internal/failpoint"
)

// volumeImage is the image the image volume tests mount: the nginx
// stand-in of tests/images, whose index.html is known.
const (
	volumeImage = "registry.k8s.io/e2e-test-images/nginx:1.14-2"
	volumeFile  = "usr/share/nginx/html/index.html"
	volumeText  = "Welcome to nginx!"
)

// imageVolumeContainer is a busybox container with volumeImage mounted
// whole at /v and its html directory (image_sub_path) at /html, running
// script.
func imageVolumeContainer(name, script string) map[string]any {
	c := shellContainer(name, script)
	c["mounts"] = []map[string]any{
		{"container_path": "/v", "image": map[string]any{"image": volumeImage}, "readonly": true},
		{"container_path": "/html", "image": map[string]any{"image": volumeImage}, "image_sub_path": "usr/share/nginx/html", "readonly": true},
	}
	return c
}

// TestImageVolume: through crictl, a container reads a known file from an
// image volume, whole and by image_sub_path; both are read-only; the
// image cannot be removed while the container exists, and can once it is
// removed; the harness's leak check finds no mount or store container
// left.
func TestImageVolume(t *testing.T) {
	h, podID, pod := containerPod(t)
	h.Crictl("pull", volumeImage)
	script := "cat /v/" + volumeFile + " /html/index.html; " +
		"touch /v/x 2>/dev/null && echo v-writable || echo v-read-only; " +
		"touch /html/x 2>/dev/null && echo html-writable || echo html-read-only; " +
		"echo done; sleep 300"
	id := h.CreateContainer(podID, imageVolumeContainer("reader", script), pod)
	h.Crictl("start", id)
	logPath := filepath.Join(h.Dir, "logs", "reader.log")
	var log string
	eventually(t, 20*time.Second, "the container reads its image volumes", func() (bool, string) {
		data, _ := os.ReadFile(logPath)
		log = string(data)
		return strings.Contains(log, "done"), log
	})
	if n := strings.Count(log, volumeText); n != 2 {
		t.Errorf("%q read %d times from the image volumes, want 2 (whole and by sub path):\n%s", volumeText, n, log)
	}
	for _, want := range []string{"v-read-only", "html-read-only"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q: the image volume is writable:\n%s", want, log)
		}
	}

	var st struct {
		Status struct {
			Mounts []struct {
				ContainerPath string `json:"containerPath"`
				Image         *struct {
					Image string `json:"image"`
				} `json:"image"`
				ImageSubPath string `json:"imageSubPath"`
			} `json:"mounts"`
		} `json:"status"`
	}
	h.CrictlJSON(&st, "inspect", "-o", "json", id)
	if len(st.Status.Mounts) != 2 || st.Status.Mounts[1].Image == nil || st.Status.Mounts[1].Image.Image != volumeImage ||
		st.Status.Mounts[1].ImageSubPath != "usr/share/nginx/html" {
		t.Errorf("ContainerStatus mounts %+v, want the two image volumes", st.Status.Mounts)
	}

	// The image is in use, as a container's own image is.
	_, stderr, err := h.crictlRaw("rmi", volumeImage)
	if err == nil || !strings.Contains(stderr, "FailedPrecondition") || !strings.Contains(stderr, id+" (as its image volume mounts[0])") {
		t.Errorf("crictl rmi of an image volume's image in use: %v, %s; want FailedPrecondition naming container %s's image volume", err, stderr, id)
	}
	h.Crictl("stop", "-t", "0", id)
	h.Crictl("rm", id)
	h.Crictl("rmi", volumeImage)
	h.Crictl("rmp", "-f", podID)
}

// TestImageVolumeBadInput: a missing image is NotFound, a sub path that
// is missing or climbs out InvalidArgument, each naming the field; none
// leaves a container, store container or mount (the leak check).
func TestImageVolumeBadInput(t *testing.T) {
	h, podID, pod := containerPod(t)
	h.Crictl("pull", volumeImage)
	c := h.client()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "x", Namespace: "y", Uid: "z"},
		LogDirectory: pod["log_directory"].(string),
	}
	volume := func(image, sub string) func(*runtimeapi.ContainerConfig) {
		return func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: image}, ImageSubPath: sub, Readonly: true}}
		}
	}
	tests := []struct {
		name string
		cfg  *runtimeapi.ContainerConfig
		code codes.Code
		want string
	}{
		{"image not in store", badContainerConfig(volume("docker.io/library/nothere:1", "")), codes.NotFound, `mounts[0].image: image "docker.io/library/nothere:1" is not in the store`},
		{"sub path missing", badContainerConfig(volume(volumeImage, "usr/share/nope")), codes.InvalidArgument, `mounts[0].image_sub_path "usr/share/nope" does not exist in image`},
		{"sub path through a file", badContainerConfig(volume(volumeImage, volumeFile+"/x")), codes.InvalidArgument, "mounts[0].image_sub_path"},
		{"sub path climbs", badContainerConfig(volume(volumeImage, "../etc")), codes.InvalidArgument, `mounts[0].image_sub_path "../etc" must not contain ".."`},
		{"sub path absolute", badContainerConfig(volume(volumeImage, "/etc")), codes.InvalidArgument, `mounts[0].image_sub_path "/etc" must be relative`},
	}
	for _, tc := range tests {
		_, err := c.CreateContainer(ctx30(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: tc.cfg, SandboxConfig: podCfg})
		wantCode(t, tc.name, err, tc.code, tc.want)
	}
	if out := h.Crictl("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("bad requests left containers: %q", out)
	}
	// Nothing holds the image.
	h.Crictl("rmi", volumeImage)
	h.Crictl("rmp", "-f", podID)
}

// TestImageVolumeCrash: cribd killed -9 with a container using an image
// volume, then restarted, removes it and its image mount; and cribd
// killed inside CreateContainer after the shim made the container (the
// image mount made, the record still marked creating) undoes it all at
// start. The leak check finds no mount or store container left.
func TestImageVolumeCrash(t *testing.T) {
	t.Run("between create and remove", func(t *testing.T) {
		h, podID, pod := containerPod(t)
		h.Crictl("pull", volumeImage)
		id := h.CreateContainer(podID, imageVolumeContainer("reader", "cat /html/index.html; sleep 300"), pod)
		h.Crictl("start", id)
		h.waitContainerState(id, "CONTAINER_RUNNING")
		h.Kill()
		h.Start()
		if st := h.InspectContainer(id); st.Status.State != "CONTAINER_RUNNING" {
			t.Errorf("container after the restart: %s, want running", st.Status.State)
		}
		h.Crictl("stop", "-t", "0", id)
		h.Crictl("rm", id)
		h.Crictl("rmi", volumeImage)
		h.Crictl("rmp", "-f", podID)
	})
	t.Run("inside create", func(t *testing.T) {
		bin := filepath.Join(binDir(), "cribd-failpoints")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%v: `make build-test` builds cribd with the failpoints tag", err)
		}
		reg := startRegistry(t, RegistryOptions{})
		conf := filepath.Join(t.TempDir(), "registries.conf")
		if err := os.WriteFile(conf, []byte(registriesConf(reg.Addr, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		const fp = "container.create.after-shim-create"
		h := start(t, Options{NoStart: true, ExtraConfig: fmt.Sprintf("\n[image]\nregistries_conf = %q\n", conf)})
		h.Binary, h.Env = bin, []string{failpoint.EnvVar + "=" + fp}
		h.Start()
		c := dialCRI(t, h.Socket)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for _, ref := range []string{"busybox", volumeImage} {
			if _, err := c.img.PullImage(ctx, pullReq(ref)); err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
		}
		podCfg := failpointPodConfig(h, "imagevol")
		r, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
		if err != nil {
			t.Fatal(err)
		}
		cfg := sleeperConfig()
		cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: volumeImage}, ImageSubPath: "usr/share", Readonly: true}}
		_, err = c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: r.PodSandboxId, SandboxConfig: podCfg, Config: cfg})
		if err == nil || !h.WaitExit(5*time.Second) {
			t.Fatalf("CreateContainer with failpoint %s armed: %v, and cribd did not die", fp, err)
		}
		c.close()
		if want := "failpoint " + fp + " reached"; !strings.Contains(h.Log(), want) {
			t.Fatalf("cribd died without %q in its log:\n%s", want, tail(h.Log(), 30))
		}
		h.Binary, h.Env = "", nil
		h.Start()
		c = dialCRI(t, h.Socket)
		defer c.close()
		removeAllLikeKubelet(t, c.rt)
		// The undone create left nothing holding the image.
		retryCRI(t, "RemoveImage "+volumeImage, func(ctx context.Context) error {
			_, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: volumeImage}})
			return err
		})
		h.Stop()
		h.CheckLeaks(t, h.Baseline(), "after a crash inside CreateContainer with an image volume")
	})
}

// TestImageVolumeUserNS: in a pod with its own user namespace, the image
// volume is idmapped through the pod's mappings as its root filesystem is
// (the pod's root owns what the host's root owns in the image), with or
// without kubelet's mappings on the mount, and still read-only; nothing
// is left once the pod is removed.
func TestImageVolumeUserNS(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	h.Crictl("pull", volumeImage)
	pod := podConfig("userns-vol")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	nsOpts := map[string]any{"userns_options": usernsOptions()}
	pod["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": nsOpts}}
	podID := h.RunPod(pod)

	idmap := []map[string]any{{"container_id": 0, "host_id": usernsHostID, "length": 65536}}
	ctr := imageVolumeContainer("reader", strings.Join([]string{
		"cat /v/" + volumeFile,
		"echo owners $(stat -c %u:%g /v/" + volumeFile + " /html/index.html)",
		"touch /html/x 2>/dev/null && echo html-writable || echo html-read-only",
		"echo done",
		"exec sleep 600",
	}, "; "))
	mounts := ctr["mounts"].([]map[string]any)
	mounts[1]["uidMappings"], mounts[1]["gidMappings"] = idmap, idmap // as kubelet sends them
	ctr["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": nsOpts}}
	id := h.CreateContainer(podID, ctr, pod)
	h.Crictl("start", id)
	var out string
	eventually(t, 20*time.Second, "the container's report", func() (bool, string) {
		out = h.Crictl("logs", id)
		return strings.Contains(out, "done"), out
	})
	for _, want := range []string{volumeText, "owners 0:0 0:0", "html-read-only"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("container output lacks %q:\n%s", want, out)
		}
	}
	h.Crictl("stop", "-t", "0", id)
	h.Crictl("rm", id)
	h.Crictl("rmp", "-f", podID)
	if left, _ := filepath.Glob(filepath.Join(h.RunDir, "storage", "userns-rootfs", "*")); len(left) != 0 {
		t.Errorf("binds left: %v", left)
	}
}
