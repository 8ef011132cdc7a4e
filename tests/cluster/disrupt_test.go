//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// Scenarios that disturb the cluster: a runtime killed under traffic, a
// node drained, a node joining.

// webOn lists the web pods on the named node.
func webOn(pods []Pod, node string) []Pod {
	var out []Pod
	for _, p := range pods {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out
}

// trafficScript sends n requests, 100 ms apart, round robin to targets,
// and prints one line per answer ("ok <ip> <body>" or "FAIL <ip>").
func trafficScript(n int, targets []string) string {
	return httpGet + fmt.Sprintf(`i=0; while [ $i -lt %d ]; do
  for ip in %s; do
    b=$(get $ip 8080 2>&1); if [ -n "$b" ]; then echo "ok $ip $b"; else echo "FAIL $ip"; fi
  done
  i=$((i+1)); sleep 0.1
done`, n, strings.Join(targets, " "))
}

// checkTraffic fails t unless out answers every request with the target's
// pod name; it returns the number of answers.
func checkTraffic(t *testing.T, out string, byIP map[string]string) int {
	t.Helper()
	ok := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "ok" && byIP[f[1]] == f[2] {
			ok++
			continue
		}
		t.Errorf("request failed or answered wrong: %q", l)
	}
	return ok
}

// testCribdKilled: SIGKILL the second node's cribd while a pod on the
// first node sends requests to the pods on the second. The pods there keep
// serving (their shims hold them; the overlay's kernel state stays), the
// Node stays Ready while cribd is down, and a restarted cribd takes the
// pods back: kubectl exec into one works and no container restarted.
func testCribdKilled(t *testing.T, c *Cluster, st *state) {
	src, dst := c.Nodes[0], c.Nodes[1]
	targets := webOn(st.web, dst.Name)
	client := webOn(st.web, src.Name)
	if len(targets) == 0 || len(client) == 0 {
		t.Fatalf("need web pods on %s and %s", src.Name, dst.Name)
	}
	byIP := map[string]string{}
	var ips []string
	for _, p := range targets {
		byIP[p.Status.PodIP] = p.Metadata.Name
		ips = append(ips, p.Status.PodIP)
	}
	ck, ok := dst.Kind.(*cribKind)
	if !ok {
		t.Skipf("%s is no crib node", dst.Name)
	}
	const rounds = 60 // about 6 s and more: the kill lands inside
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, "-n", testNS, "exec", client[0].Metadata.Name, "--", "sh", "-c", trafficScript(rounds, ips))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 20*time.Second, "traffic flowing", func() (bool, string) {
		return strings.Count(out.String(), "\nok ") >= 4, out.String()
	})
	p := ck.proc[dst]
	if !p.Signal(syscall.SIGKILL, 10*time.Second) {
		t.Fatalf("%s cribd survived SIGKILL", dst.Name)
	}
	killed := time.Now()
	if err := cmd.Wait(); err != nil {
		t.Errorf("traffic: kubectl exec: %v", err)
	}
	n := checkTraffic(t, out.String(), byIP)
	t.Logf("%d requests answered, cribd down for the last %s of them", n, time.Since(killed).Round(time.Millisecond))
	if n < rounds*len(ips) {
		t.Errorf("%d of %d requests answered", n, rounds*len(ips))
	}
	if r := nodeReady(t, c, dst.Name); r != "True" {
		t.Errorf("%s not Ready (%s) %s after its cribd was killed", dst.Name, r, time.Since(killed).Round(time.Millisecond))
	}
	ck.Start(dst)
	harness.Eventually(t, 60*time.Second, dst.Name+" Ready with the restarted cribd", func() (bool, string) {
		r := nodeReady(t, c, dst.Name)
		return r == "True", r
	})
	for _, p := range targets {
		// kubelet's gRPC connection to the socket redials with back-off:
		// until it has, its calls fail with the refused dial of the outage.
		harness.Eventually(t, 60*time.Second, "kubectl exec in "+p.Metadata.Name+" after the restart", func() (bool, string) {
			out, err := c.kubectlRaw(context.Background(), "-n", testNS, "exec", p.Metadata.Name, "--", "hostname")
			return err == nil && strings.TrimSpace(out) == p.Metadata.Name, out
		})
		restarts := strings.TrimSpace(c.kubectl(t, "-n", testNS, "get", "pod", p.Metadata.Name, "-o", "jsonpath={.status.containerStatuses[0].restartCount}"))
		if restarts != "0" {
			t.Errorf("%s: restartCount %s after its node's cribd restarted, want 0", p.Metadata.Name, restarts)
		}
	}
}

// nodeReady is the node's Ready condition status ("True", "False",
// "Unknown").
func nodeReady(t *testing.T, c *Cluster, name string) string {
	t.Helper()
	return strings.TrimSpace(c.kubectl(t, "get", "node", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`))
}

// testDrain: kubectl drain of the second node evicts its web pods; the
// Deployment's replacements run on the other nodes and every web pod
// reaches every other across them. The node is uncordoned after.
func testDrain(t *testing.T, c *Cluster, st *state) {
	drained := c.Nodes[1]
	c.kubectl(t, "drain", drained.Name, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--grace-period", "1", "--timeout", "90s")
	defer c.kubectl(t, "uncordon", drained.Name)
	pods := c.waitPodsReady(t, "app=web", 6, 120*time.Second)
	// Terminated pods of the drain may linger a moment: wait until none
	// is left on the drained node.
	harness.Eventually(t, 60*time.Second, "no web pod left on "+drained.Name, func() (bool, string) {
		pods = c.pods(t, "app=web")
		on := webOn(pods, drained.Name)
		return len(on) == 0 && len(pods) == 6, fmt.Sprintf("%d web pods, %d on %s", len(pods), len(on), drained.Name)
	})
	byIP := map[string]string{}
	for _, p := range pods {
		byIP[p.Status.PodIP] = p.Metadata.Name
	}
	for _, from := range pods {
		var targets []string
		for _, to := range pods {
			if to.Spec.NodeName != from.Spec.NodeName {
				targets = append(targets, to.Status.PodIP)
			}
		}
		checkTraffic(t, c.kubectl(t, "-n", testNS, "exec", from.Metadata.Name, "--", "sh", "-c", trafficScript(1, targets)), byIP)
	}
	st.web = pods
}

// testNodeJoins: a fourth node joins the running cluster; nothing else is
// restarted. It turns Ready with its own pod CIDR, and a pod on it and the
// web pods on the other nodes reach each other both ways.
func testNodeJoins(t *testing.T, c *Cluster, st *state) {
	var kind nodeKind = newCribKind()
	if len(c.Nodes) > 0 {
		kind = c.Nodes[0].Kind
	}
	n := c.AddNode(kind)
	harness.Eventually(t, 120*time.Second, n.Name+" Ready", func() (bool, string) {
		c.checkRunning(t)
		r := nodeReady(t, c, n.Name)
		return r == "True", r
	})
	reachBothWays(t, c, n, "joined")
}
