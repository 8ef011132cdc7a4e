//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const badImageManifest = `apiVersion: v1
kind: Pod
metadata:
  name: badimage
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: docker.io/library/crib-e2e-no-such-image:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 3600"]
`

// TestBadImage: a pod whose image does not exist: kubelet reports
// ErrImagePull, then ImagePullBackOff, and its log carries cribd's message
// naming the image and the registry.
func TestBadImage(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("badimage", badImageManifest)
	const cribdMsg = "pull docker.io/library/crib-e2e-no-such-image:latest: not found in registry docker.io"
	line := logHas(t, k.LogPath, 60*time.Second, "kubelet logs ErrImagePull with cribd's message", "ErrImagePull", cribdMsg)
	t.Logf("kubelet: %s", line)
	waitPod(t, k, 60*time.Second, "badimage", "app waiting in ImagePullBackOff", func(p KubeletPod) (bool, string) {
		cs, ok := p.Container("app")
		return ok && cs.Waiting() == "ImagePullBackOff", p.String()
	})
	// The sandbox runs; no container was created.
	podID := sandboxID(t, c, k, "badimage")
	if ctrs := containers(t, c, podID); len(ctrs) != 0 {
		t.Errorf("crictl ps -a --pod %s: %+v, want no container", podID, ctrs)
	}
}

const cniFailManifest = `apiVersion: v1
kind: Pod
metadata:
  name: cnifail
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep 3600"]
`

// TestCNIAddFails: the pod's CNI ADD fails (crib-e2e-gate, chained after
// the bridge plugin, refuses pods named cnifail*): kubelet reports
// FailedCreatePodSandBox with the plugin's message, retries, and each
// failed attempt leaves no sandbox and no IP behind.
func TestCNIAddFails(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("cnifail", cniFailManifest)
	line := logHas(t, k.LogPath, 60*time.Second, "kubelet logs FailedCreatePodSandBox with the plugin's message",
		"FailedCreatePodSandBox", "crib-e2e-gate refuses this pod")
	t.Logf("kubelet: %s", line)
	// kubelet retries: a second failed RunPodSandbox in cribd.
	eventually(t, 60*time.Second, "cribd fails RunPodSandbox twice", func() (bool, string) {
		n := 0
		for _, l := range strings.Split(readFile(c.LogPath), "\n") {
			if strings.Contains(l, "RunPodSandbox") && strings.Contains(l, "CRI call failed") && strings.Contains(l, "crib-e2e-gate refuses this pod") {
				n++
			}
		}
		return n >= 2, fmt.Sprintf("%d failed RunPodSandbox calls", n)
	})
	p, ok, err := k.Pod("cnifail")
	if err != nil || !ok || p.Status.Phase != "Pending" || p.Status.PodIP != "" {
		t.Errorf("kubelet's pod: listed %v, %v: %s; want Pending with no IP", ok, err, p.String())
	}
	// Between attempts cribd holds no sandbox and host-local no lease.
	eventually(t, 30*time.Second, "no sandbox and no IP lease between attempts", func() (bool, string) {
		sbs := sandboxes(t, c, k, "cnifail")
		leases, _ := filepath.Glob(filepath.Join(c.IPAMDataDir, "*", network.Prefix+"*"))
		return len(sbs) == 0 && len(leases) == 0, fmt.Sprintf("sandboxes %v, leases %v", sbs, leases)
	})
}
