//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pairManifest = `apiVersion: v1
kind: Pod
metadata:
  name: pair
  namespace: default
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: server
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www && echo crib-e2e-pong > /www/index.html && httpd -f -p 127.0.0.1:8080 -h /www & wait"]
  - name: client
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; until wget -q -O- http://127.0.0.1:8080/; do sleep 1; done; sleep 3600 & wait"]
`

// TestTwoContainerPod: a server and a client container of one pod talk
// over the pod's loopback; both have the pod's IP and share the pause
// process's network, IPC and UTS namespaces (each keeps its own PID
// namespace, as kubelet asks by default).
func TestTwoContainerPod(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("pair", pairManifest)
	pod := waitRunning(t, k, "pair", 2)
	podID := sandboxID(t, c, k, "pair")

	ids := map[string]string{}
	for _, ctr := range containers(t, c, podID) {
		ids[ctr.Metadata.Name] = ctr.ID
	}
	if ids["server"] == "" || ids["client"] == "" {
		t.Fatalf("crictl ps --pod %s: %v, want server and client", podID, ids)
	}
	eventually(t, 30*time.Second, "the client's log shows the server's page", func() (bool, string) {
		out, errOut, err := c.CrictlRaw("logs", ids["client"])
		return err == nil && strings.Contains(out, "crib-e2e-pong"), fmt.Sprintf("%v: stdout %q stderr %q", err, out, errOut)
	})

	pause := c.PausePID(podID)
	pids := map[string]int{}
	for name, id := range ids {
		pids[name] = containerPID(t, c, id)
		for _, ns := range []string{"net", "ipc", "uts"} {
			if got, want := nsOf(t, pids[name], ns), nsOf(t, pause, ns); got != want {
				t.Errorf("%s: %s namespace %s, pause's %s", name, ns, got, want)
			}
		}
		addr := c.Crictl("exec", id, "ip", "-4", "-o", "addr")
		if !strings.Contains(addr, "inet "+pod.Status.PodIP+"/") {
			t.Errorf("%s: ip addr shows %q, want kubelet's podIP %s", name, strings.TrimSpace(addr), pod.Status.PodIP)
		}
	}
	if nsOf(t, pids["server"], "pid") == nsOf(t, pids["client"], "pid") {
		t.Errorf("server and client share a PID namespace; the pod did not ask for it")
	}
}

const initManifest = `apiVersion: v1
kind: Pod
metadata:
  name: withinit
  namespace: default
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: work
    emptyDir: {}
  initContainers:
  - name: init
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo crib-e2e-init-wrote-this > /work/file"]
    volumeMounts:
    - {name: work, mountPath: /work}
  containers:
  - name: app
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; echo \"app read: $(cat /work/file)\"; sleep 3600 & wait"]
    volumeMounts:
    - {name: work, mountPath: /work}
`

// TestInitContainer: an init container writes into an emptyDir and exits
// 0; then the app container starts and reads the file.
func TestInitContainer(t *testing.T) {
	e := startEnv(t)
	k, c := e.Kubelet, e.Cribd
	k.WriteManifest("withinit", initManifest)
	pod := waitRunning(t, k, "withinit", 1)

	init, ok := pod.Container("init")
	term, _ := init.State["terminated"].(map[string]any)
	if !ok || term == nil || term["exitCode"] != float64(0) || term["reason"] != "Completed" {
		t.Errorf("init container status %+v, want terminated with exit code 0, reason Completed", init)
	}
	podID := sandboxID(t, c, k, "withinit")
	var app string
	for _, ctr := range containers(t, c, podID) {
		switch ctr.Metadata.Name {
		case "init":
			if ctr.State != "CONTAINER_EXITED" {
				t.Errorf("crictl ps -a: init container %s is %s, want CONTAINER_EXITED", ctr.ID, ctr.State)
			}
		case "app":
			app = ctr.ID
		}
	}
	if app == "" {
		t.Fatalf("crictl ps -a --pod %s: no app container", podID)
	}
	eventually(t, 20*time.Second, "the app's log shows the file", func() (bool, string) {
		out, errOut, err := c.CrictlRaw("logs", app)
		return err == nil && strings.Contains(out, "app read: crib-e2e-init-wrote-this"), fmt.Sprintf("%v: stdout %q stderr %q", err, out, errOut)
	})
	file := filepath.Join(k.Dir, "root", "pods", pod.Metadata.UID, "volumes", "kubernetes.io~empty-dir", "work", "file")
	if b, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(b)) != "crib-e2e-init-wrote-this" {
		t.Errorf("the emptyDir on the host, %s: %q, %v", file, b, err)
	}
}
