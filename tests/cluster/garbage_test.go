//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// garbageNode is a Node object no kubelet runs, whose flannel annotations
// the test sets: a peer as another agent could have published it.
const (
	garbageNode   = "garbage-node"
	garbageCIDR   = "10.244.200.0/24" // in the cluster CIDR, far above the allocated ones
	garbageMAC    = "0a:0b:0c:0d:0e:0f"
	garbagePublic = "192.0.2.10" // TEST-NET-1: programmed, never sent to
)

// testGarbageNode: a Node whose backend-data annotation is not JSON is
// skipped by every crib node, with one warning naming it in each cribd's
// log however often the Node changes after, and the nodes' overlays keep
// working; once the annotations are mended every crib node programs its
// route, neighbour and FDB entry, and deleting the Node removes them.
func testGarbageNode(t *testing.T, c *Cluster, st *state) {
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Node
metadata:
  name: %s
  annotations:
    flannel.alpha.coreos.com/kube-subnet-manager: "true"
    flannel.alpha.coreos.com/backend-type: vxlan
    flannel.alpha.coreos.com/backend-data: '{"VNI":1,"VtepMAC":'
    flannel.alpha.coreos.com/public-ip: %s
spec:
  podCIDR: %s
  podCIDRs: [%s]
`, garbageNode, garbagePublic, garbageCIDR, garbageCIDR))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.kubectlRaw(ctx, "delete", "node", garbageNode, "--ignore-not-found")
	})

	var cribNodes []*Node
	for _, n := range c.Nodes {
		if n.Kind.Name() == "crib" {
			cribNodes = append(cribNodes, n)
		}
	}
	warnings := func(n *Node) int {
		count := 0
		for _, f := range n.Kind.Logs(n) {
			b, _ := os.ReadFile(f)
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "skipping node") && strings.Contains(l, "node="+garbageNode) && strings.Contains(l, "level=warning") {
					count++
				}
			}
		}
		return count
	}
	for _, n := range cribNodes {
		harness.Eventually(t, 30*time.Second, n.Name+" logs that it skips "+garbageNode, func() (bool, string) {
			w := warnings(n)
			return w > 0, fmt.Sprintf("%d warnings", w)
		})
		if e := peerState(n, garbageCIDR, garbageMAC, garbagePublic); e.route != "" || e.neigh != "" || e.fdb != "" {
			t.Errorf("%s programmed entries for the garbage Node: %+v", n.Name, e)
		}
	}
	// The overlay still carries traffic between the real nodes.
	testPodToPod(t, c, st)

	c.kubectl(t, "annotate", "--overwrite", "node", garbageNode,
		fmt.Sprintf(`flannel.alpha.coreos.com/backend-data={"VNI":1,"VtepMAC":"%s"}`, garbageMAC))
	for _, n := range cribNodes {
		harness.Eventually(t, 30*time.Second, n.Name+" programs the mended Node", func() (bool, string) {
			e := peerState(n, garbageCIDR, garbageMAC, garbagePublic)
			return e.route != "" && e.neigh != "" && e.fdb != "", fmt.Sprintf("%+v", e)
		})
		// Skipped once, not at each of the Node's updates meanwhile (the
		// node lifecycle controller taints it and marks it unknown).
		if w := warnings(n); w != 1 {
			t.Errorf("%s logged %d warnings for %s, want 1", n.Name, w, garbageNode)
		}
	}
	c.kubectl(t, "delete", "node", garbageNode, "--wait=true")
	for _, n := range cribNodes {
		harness.Eventually(t, 30*time.Second, n.Name+" removes the deleted Node's entries", func() (bool, string) {
			e := peerState(n, garbageCIDR, garbageMAC, garbagePublic)
			return e == (peerEntries{}), fmt.Sprintf("left: %+v", e)
		})
	}
}
