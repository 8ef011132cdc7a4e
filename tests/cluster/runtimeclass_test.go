//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// runtimeClasses are RuntimeClass objects for the crib nodes' runtime
// handlers (crib.toml's [runtime.handlers.runc] and .crun). A standalone
// kubelet (tests/e2e) cannot take this path: it resolves runtimeClassName
// only through the API server (its RuntimeClass manager exists only with a
// client), and v1.37.2 crashes on a static pod that names a RuntimeClass
// (its nil manager reaches NamespacesForPod as a non-nil interface).
const runtimeClasses = `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: runc}
handler: runc
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: crun}
handler: crun
`

// runtimeClassPod is a busybox pod under RuntimeClass rc.
func runtimeClassPod(rc string) string {
	return `apiVersion: v1
kind: Pod
metadata: {name: rc-` + rc + `, namespace: ` + testNS + `, labels: {app: rc-` + rc + `}}
spec:
  runtimeClassName: ` + rc + `
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: ` + busybox + `
    command: [sh, -c, 'echo started-under-` + rc + `; exec sleep 3600']
`
}

// testRuntimeClass: a pod whose RuntimeClass names a crib runtime handler
// reaches crib with that handler: the node's crib runs its sandbox with it
// and its container through that runtime (the container's state is in the
// handler's state root), and kubectl logs and exec work through it. crun
// is skipped on a hybrid cgroup host whose v2 hierarchy has controllers,
// which crun refuses.
func testRuntimeClass(t *testing.T, c *Cluster, _ *state) {
	c.apply(t, runtimeClasses)
	handlers := []string{"runc"}
	if data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && strings.TrimSpace(string(data)) != "" {
		t.Logf("crun skipped: it refuses hybrid cgroup hosts whose cgroup v2 has controllers (here %q)", strings.TrimSpace(string(data)))
	} else {
		handlers = append(handlers, "crun")
	}
	for _, rc := range handlers {
		c.apply(t, runtimeClassPod(rc))
		pod := c.waitPodsReady(t, "app=rc-"+rc, 1, 120*time.Second)[0]
		var node *Node
		for _, n := range c.Nodes {
			if n.Name == pod.Spec.NodeName {
				node = n
			}
		}
		if node == nil {
			t.Fatalf("pod %s runs on %q, not a crib node of this test", pod.Metadata.Name, pod.Spec.NodeName)
		}
		var sandboxes struct {
			Items []struct {
				ID             string `json:"id"`
				RuntimeHandler string `json:"runtimeHandler"`
				Metadata       struct {
					Name string `json:"name"`
				} `json:"metadata"`
			} `json:"items"`
		}
		out, e, err := crictl(node.Socket, "pods", "--name", pod.Metadata.Name, "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &sandboxes) != nil || len(sandboxes.Items) == 0 {
			t.Fatalf("crictl pods on %s: %v: %s %s", node.Name, err, out, e)
		}
		if got := sandboxes.Items[0].RuntimeHandler; got != rc {
			t.Errorf("pod %s's sandbox has runtime handler %q, want %q", pod.Metadata.Name, got, rc)
		}
		ids, e, err := crictl(node.Socket, "ps", "-q", "--pod", sandboxes.Items[0].ID)
		if err != nil || len(strings.Fields(ids)) != 1 {
			t.Fatalf("crictl ps on %s: %v: %q %s", node.Name, err, ids, e)
		}
		ctr := strings.Fields(ids)[0]
		if _, err := os.Stat(filepath.Join(node.Dir, "cribd", "run", "runtimes", rc, ctr)); err != nil {
			t.Errorf("container %s is not in %s's state root: %v", ctr[:12], rc, err)
		}
		harness.Eventually(t, 30*time.Second, "kubectl logs of "+pod.Metadata.Name, func() (bool, string) {
			out, err := c.kubectlRaw(context.Background(), "-n", testNS, "logs", pod.Metadata.Name)
			return err == nil && strings.Contains(out, "started-under-"+rc), out
		})
		if out := c.kubectl(t, "-n", testNS, "exec", pod.Metadata.Name, "--", "echo", "exec-under-"+rc); strings.TrimSpace(out) != "exec-under-"+rc {
			t.Errorf("kubectl exec under %s: %q", rc, out)
		}
		c.kubectl(t, "-n", testNS, "delete", "pod", pod.Metadata.Name, "--wait=true", "--timeout=60s")
	}
}
