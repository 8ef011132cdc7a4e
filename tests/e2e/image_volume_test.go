//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// imageVolumeManifest is a static pod with an image volume (KEP-4639, GA
// in kubelet 1.36): the nginx stand-in of tests/images mounted whole at
// /v and, by subPath, its html directory at /html; the container prints
// the page from both and whether it could write.
const imageVolumeManifest = `apiVersion: v1
kind: Pod
metadata:
  name: imagevol
  namespace: default
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: v
    image:
      reference: registry.k8s.io/e2e-test-images/nginx:1.14-2
      pullPolicy: IfNotPresent
  containers:
  - name: reader
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; echo \"whole: $(cat /v/usr/share/nginx/html/index.html)\"; echo \"sub: $(cat /html/index.html)\"; touch /v/x 2>/dev/null && echo writable || echo read-only; sleep 3600 & wait"]
    volumeMounts:
    - {name: v, mountPath: /v}
    - {name: v, mountPath: /html, subPath: usr/share/nginx/html}
`

// TestImageVolume: kubelet pulls an image volume's image and creates the
// container with a Mount.image (and image_sub_path for the subPath); the
// container reads the image's file through both, read-only.
func TestImageVolume(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("imagevol", imageVolumeManifest)
	waitRunning(t, k, "imagevol", 1)
	podID := sandboxID(t, c, k, "imagevol")
	ctrs := containers(t, c, podID)
	if len(ctrs) != 1 {
		t.Fatalf("crictl ps --pod %s: %v, want the reader", podID, ctrs)
	}
	eventually(t, 30*time.Second, "the reader's log shows the image's page twice, read-only", func() (bool, string) {
		out, errOut, err := c.CrictlRaw("logs", ctrs[0].ID)
		ok := err == nil && strings.Contains(out, "whole: <html><body><h1>Welcome to nginx!") &&
			strings.Contains(out, "sub: <html><body><h1>Welcome to nginx!") && strings.Contains(out, "read-only")
		return ok, fmt.Sprintf("%v: stdout %q stderr %q", err, out, errOut)
	})
}
