//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// cdiManifest is a static pod that asks for a CDI device the only way a
// pod without a device plugin or DRA can: a cdi.k8s.io/ annotation on the
// pod, which kubelet passes in the sandbox config (container annotations
// come from kubelet's device manager alone).
const cdiManifest = `apiVersion: v1
kind: Pod
metadata:
  name: %[1]s
  namespace: default
  annotations:
    cdi.k8s.io/e2e: vendor.com/device=%[2]s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`

// TestCDIPodAnnotation: with cdi.pod_annotations on, a static pod
// annotated cdi.k8s.io/e2e: vendor.com/device=foo runs under kubelet with
// the device node, env and mount of the CDI spec cribd reads; one
// annotated with an unknown device waits in CreateContainerError with
// cribd's message naming it.
func TestCDIPodAnnotation(t *testing.T) {
	e := startEnvConfig(t, "\n[cdi]\nspec_dirs = [\"@DIR@/cdi\"]\npod_annotations = true\n")
	k, c := e.Kubelet, e.Cribd
	harness.WriteCDISpecs(t, c.Dir)

	k.WriteManifest("cdi", fmt.Sprintf(cdiManifest, "cdi", "foo"))
	k.WriteManifest("cdinope", fmt.Sprintf(cdiManifest, "cdinope", "nope"))

	waitPod(t, k, 120*time.Second, "cdi", "Running", func(p KubeletPod) (bool, string) {
		cs, ok := p.Container("app")
		return p.Status.Phase == "Running" && ok && cs.Ready, p.String()
	})
	ctrs := containers(t, c, sandboxID(t, c, k, "cdi"))
	if len(ctrs) != 1 {
		t.Fatalf("pod cdi: containers %+v, want one", ctrs)
	}
	out := c.Crictl("exec", "-s", ctrs[0].ID, "sh", "-c", harness.CDIProbe)
	for _, want := range harness.CDIProbeWant {
		if !harness.HasLine(out, want) {
			t.Errorf("pod cdi's container lacks %q:\n%s", want, out)
		}
	}

	const msg = "CDI device vendor.com/device=nope is defined by no spec file"
	waitPod(t, k, 120*time.Second, "cdinope", "app waiting in CreateContainerError naming the device", func(p KubeletPod) (bool, string) {
		cs, ok := p.Container("app")
		w, _ := cs.State["waiting"].(map[string]any)
		m, _ := w["message"].(string)
		return ok && cs.Waiting() == "CreateContainerError" && strings.Contains(m, msg), p.String()
	})
	if ctrs := containers(t, c, sandboxID(t, c, k, "cdinope")); len(ctrs) != 0 {
		t.Errorf("pod cdinope: containers %+v, want none", ctrs)
	}
}
