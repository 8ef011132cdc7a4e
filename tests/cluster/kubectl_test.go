//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// testNS is the namespace every scenario's objects live in; cleanup
// deletes it.
const testNS = "crib-test"

// kubectlCmd is kubectl as the cluster admin.
func (c *Cluster) kubectlCmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--kubeconfig", c.Admin, "--cache-dir", filepath.Join(c.Dir, "kubectl-cache")}, args...)
	return exec.CommandContext(ctx, kubeBin("kubectl"), full...)
}

// kubectlRaw runs kubectl and returns its combined output.
func (c *Cluster) kubectlRaw(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := c.kubectlCmd(ctx, args...).CombinedOutput()
	return string(out), err
}

// kubectl runs kubectl and fails t if it fails; it returns stdout.
func (c *Cluster) kubectl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String()
}

// apply applies a manifest.
func (c *Cluster) apply(t testing.TB, manifest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s\n%s", err, out, manifest)
	}
}

// Pod is the part of a Pod object the scenarios read.
type Pod struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

// Ready reports the pod's Ready condition.
func (p Pod) Ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// pods lists the test namespace's pods matching selector ("" for all).
func (c *Cluster) pods(t testing.TB, selector string) []Pod {
	t.Helper()
	args := []string{"-n", testNS, "get", "pods", "-o", "json"}
	if selector != "" {
		args = append(args, "-l", selector)
	}
	var list struct{ Items []Pod }
	if err := json.Unmarshal([]byte(c.kubectl(t, args...)), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitPodsReady waits until n pods match selector and all are Ready.
func (c *Cluster) waitPodsReady(t testing.TB, selector string, n int, timeout time.Duration) []Pod {
	t.Helper()
	var pods []Pod
	harness.Eventually(t, timeout, fmt.Sprintf("%d pods %s Ready", n, selector), func() (bool, string) {
		c.checkRunning(t)
		pods = c.pods(t, selector)
		ready := 0
		var seen []string
		for _, p := range pods {
			if p.Ready() {
				ready++
			}
			seen = append(seen, fmt.Sprintf("%s on %q %s ready=%v ip=%s", p.Metadata.Name, p.Spec.NodeName, p.Status.Phase, p.Ready(), p.Status.PodIP))
		}
		return len(pods) == n && ready == n, strings.Join(seen, "; ") + "\n" + c.kubectl(t, "-n", testNS, "get", "events", "--sort-by", ".lastTimestamp")
	})
	return pods
}

// checkRunning fails t if a daemon of the cluster exited unasked.
func (c *Cluster) checkRunning(t testing.TB) {
	t.Helper()
	for _, p := range c.controlPlane {
		if p.Crashed() {
			t.Fatalf("%s exited: %v\n%s", p.Name, p.ExitErr(), p.LogTail(40))
		}
	}
	for _, n := range c.Nodes {
		for _, p := range n.procs() {
			if p.Crashed() {
				t.Fatalf("%s exited: %v\n%s", p.Name, p.ExitErr(), p.LogTail(40))
			}
		}
	}
}

// dump logs what a failing test needs to see: the cluster's objects and
// events, and the end of every daemon's log.
func (c *Cluster) dump() {
	t := c.t
	if c.Admin != "" {
		for _, args := range [][]string{
			{"get", "nodes", "-o", "wide"},
			{"get", "pods", "-A", "-o", "wide"},
			{"get", "services,endpointslices", "-A", "-o", "wide"},
			{"describe", "pods", "-n", testNS},
			{"get", "events", "-A", "--sort-by", ".lastTimestamp"},
		} {
			out, _ := c.kubectlRaw(context.Background(), args...)
			t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
		}
	}
	var files []string
	for _, p := range c.controlPlane {
		files = append(files, p.LogPath)
	}
	for _, n := range c.Nodes {
		files = append(files, n.logs()...)
	}
	for _, f := range files {
		t.Logf("%s (last 80 lines):\n%s", f, harness.Tail(harness.ReadFile(f), 80))
	}
}

// deleteWorkloads deletes the test namespace and waits until no pod is
// left in the cluster and no node's runtime has a pod still running.
func (c *Cluster) deleteWorkloads() {
	t := c.t
	if out, err := c.kubectlRaw(context.Background(), "delete", "namespace", testNS, "--ignore-not-found", "--wait=false"); err != nil {
		t.Errorf("kubectl delete namespace: %v: %s", err, out)
		return
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		out, err := c.kubectlRaw(context.Background(), "get", "pods", "-A", "-o", "name")
		left := strings.TrimSpace(out)
		var ready []string
		for _, n := range c.Nodes {
			if o, _, err := crictl(n.Socket, "pods", "--state", "ready", "-q"); err == nil && strings.TrimSpace(o) != "" {
				ready = append(ready, n.Name+": "+strings.Join(strings.Fields(o), " "))
			}
		}
		if err == nil && left == "" && len(ready) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("cleanup: 120s after the namespace was deleted, pods are left: %v %s; ready sandboxes: %v", err, left, ready)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
