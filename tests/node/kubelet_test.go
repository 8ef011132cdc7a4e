//go:build node

package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// kubelet's ports on the guest's loopback: healthz and the read-only API.
const (
	kubeletHealthz  = "127.0.0.1:10248"
	kubeletReadOnly = "127.0.0.1:10255"
)

// startKubelet runs kubelet v1.37 standalone (no API server: static pods
// from manifestDir) against crib.service as the transient unit
// crib-node-kubelet, with kubelet's defaults but what standalone needs and
// cgroupDriver (crib's driver must match): failCgroupV1 stays true (this
// node is cgroup v2), and crash-loop back-off capped at 5s so that
// restart scenarios take seconds. t.Cleanup stops it.
func startKubelet(t *testing.T, manifestDir, cgroupDriver string) {
	t.Helper()
	bin := shareBin("kubelet")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no kubelet in the share (%v): scripts/build-kubelet.sh on the host", err)
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %q
fileCheckFrequency: 1s
cgroupDriver: %s
containerRuntimeEndpoint: unix://%s
readOnlyPort: 10255
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
resolvConf: ""
featureGates:
  KubeletCrashLoopBackOffMax: true
crashLoopBackOff:
  maxContainerRestartPeriod: 5s
`, manifestDir, cgroupDriver, criSocket)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// kubelet is 90 MB: paged in over 9p by a TCG guest it takes minutes
	// to start; one copy to the guest's disk, sequential, is faster.
	local := "/usr/local/bin/kubelet"
	if _, err := os.Stat(local); err != nil {
		run(t, "install", "-m", "0755", bin, local)
	}
	run(t, "systemd-run", "--unit", "crib-node-kubelet", "--quiet", "--property", "After=crib.service",
		local, "--config", cfgPath, "--root-dir", "/var/lib/kubelet", "--hostname-override", "crib-node", "--v", "2")
	t.Cleanup(func() {
		if t.Failed() {
			status, _, _ := runRaw("systemctl", "status", "--no-pager", "crib-node-kubelet")
			t.Logf("systemctl status crib-node-kubelet:\n%s\njournalctl -u crib-node-kubelet:\n%s", status, journal("crib-node-kubelet"))
		}
		_, _, _ = runRaw("systemctl", "stop", "crib-node-kubelet")
		_, _, _ = runRaw("systemctl", "reset-failed", "crib-node-kubelet")
	})
	harness.Eventually(t, 4*time.Minute, "kubelet /healthz", func() (bool, string) {
		body, err := httpGet("http://" + kubeletHealthz + "/healthz")
		return err == nil && body == "ok", fmt.Sprintf("%q %v", body, err)
	})
}

// httpGet returns a URL's body, or an error for a non-200 answer.
func httpGet(url string) (string, error) {
	// kubelet may hang a request under load: a poll must fail, not block.
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// kubeletPodPhase is the phase kubelet's read-only API gives the pod
// named name, "" when kubelet has no such pod.
func kubeletPodPhase(name string) (string, error) {
	body, err := httpGet("http://" + kubeletReadOnly + "/pods")
	if err != nil {
		return "", err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return "", err
	}
	for _, p := range list.Items {
		if p.Metadata.Name == name {
			return p.Status.Phase, nil
		}
	}
	return "", nil
}

// TestKubeletStaticPod: kubelet v1.37 with its defaults (cgroupfs, crib's
// default driver too) on this cgroup v2 node runs a static pod on crib to
// Running; removing the manifest removes the pod, and nothing of it is left.
func TestKubeletStaticPod(t *testing.T) {
	staticPod(t, "cgroupfs")
}

// staticPod runs a busybox static pod under kubelet with cgroupDriver to
// Running, then removes it and checks that nothing is left.
func staticPod(t *testing.T, cgroupDriver string) {
	dumpOnFailure(t)
	manifests := t.TempDir()
	startKubelet(t, manifests, cgroupDriver)

	manifest := filepath.Join(manifests, "static-busybox.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: static-busybox
  namespace: default
spec:
  containers:
  - name: busybox
    image: docker.io/library/busybox:latest
    command: ["sh", "-c", "echo static pod up; exec sleep 3600"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Static pods are named <name>-<node name>.
	const podName = "static-busybox-crib-node"
	harness.Eventually(t, 3*time.Minute, "the static pod Running in kubelet", func() (bool, string) {
		phase, err := kubeletPodPhase(podName)
		return phase == "Running", fmt.Sprintf("phase %q, err %v; crictl pods: %s", phase, err, crictlOut("pods"))
	})
	pod := crictl(t, "pods", "-q", "--name", "static-busybox")
	ctr := crictl(t, "ps", "-q", "--pod", pod, "--state", "Running")
	if pod == "" || ctr == "" || strings.Contains(pod, "\n") || strings.Contains(ctr, "\n") {
		t.Fatalf("want one pod and one running container: pods %q, containers %q", pod, ctr)
	}

	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 2*time.Minute, "kubelet removing the pod", func() (bool, string) {
		out := crictlOut("pods", "-q", "--name", "static-busybox")
		return out == "", "crictl pods: " + out
	})
	checkGone(t, pod, ctr)
}

// crictlOut is crictl's trimmed stdout, or its error, for poll messages.
func crictlOut(args ...string) string {
	out, errOut, err := runRaw("crictl", args...)
	if err != nil {
		return fmt.Sprintf("%v: %s", err, errOut)
	}
	return strings.TrimSpace(out)
}
