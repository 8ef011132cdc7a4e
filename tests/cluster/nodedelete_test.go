//go:build cluster

package cluster

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// peerEntries is what a node's overlay programs for one peer, flannel's
// way: a route to the peer's pod subnet through the VTEP, a neighbour
// entry for the peer's VTEP address (its subnet's .0) and an FDB entry
// sending the peer's VTEP MAC to its underlay address.
type peerEntries struct{ route, neigh, fdb string }

// peerState lists on n the entries for the peer with pod CIDR cidr, VTEP
// MAC mac and underlay address ip; empty fields are missing entries.
func peerState(n *Node, cidr, mac, ip string) peerEntries {
	var e peerEntries
	vtepIP := strings.TrimSuffix(cidr, "/24")
	out, _ := exec.Command("ip", "-n", n.NS, "route", "show", cidr).CombinedOutput()
	if strings.Contains(string(out), "flannel.1") {
		e.route = strings.TrimSpace(string(out))
	}
	out, _ = exec.Command("ip", "-n", n.NS, "neigh", "show", "dev", "flannel.1").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, vtepIP+" ") && strings.Contains(l, mac) {
			e.neigh = l
		}
	}
	out, _ = exec.Command("bridge", "-n", n.NS, "fdb", "show", "dev", "flannel.1").CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, mac+" ") && strings.Contains(l, "dst "+ip+" ") {
			e.fdb = l
		}
	}
	return e
}

// vtepMAC is the MAC of the node's flannel.1.
func vtepMAC(t *testing.T, n *Node) string {
	t.Helper()
	out := run(t, "ip", "-n", n.NS, "-j", "link", "show", "flannel.1")
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j link show flannel.1 on %s: %v: %s", n.Name, err, out)
	}
	return links[0].Address
}

// testNodeDeleted: the last node leaves the cluster (drained, its kubelet
// and kube-proxy stopped, its Node object deleted); the
// other nodes' overlays remove its route, neighbour and FDB entries. Its
// cribd keeps running: only the Node object tells the others it is gone.
// It runs last: the cluster has one node fewer after it.
func testNodeDeleted(t *testing.T, c *Cluster, _ *state) {
	gone := c.Nodes[len(c.Nodes)-1]
	cidr := strings.TrimSpace(c.kubectl(t, "get", "node", gone.Name, "-o", "jsonpath={.spec.podCIDR}"))
	mac := vtepMAC(t, gone)
	others := c.Nodes[:len(c.Nodes)-1]
	for _, n := range others {
		e := peerState(n, cidr, mac, gone.IP)
		if e.route == "" || e.neigh == "" || e.fdb == "" {
			t.Fatalf("before the delete, %s lacks entries for %s (%s, VTEP %s, %s): %+v\nroutes:\n%s\nneigh:\n%s\nfdb:\n%s", n.Name, gone.Name, cidr, mac, gone.IP, e,
				run(t, "ip", "-n", n.NS, "route"), run(t, "ip", "-n", n.NS, "neigh", "show", "dev", "flannel.1"), run(t, "bridge", "-n", n.NS, "fdb", "show", "dev", "flannel.1"))
		}
	}
	gone.leave(t)
	c.kubectl(t, "delete", "node", gone.Name, "--wait=true")
	for _, n := range others {
		harness.Eventually(t, 30*time.Second, fmt.Sprintf("%s removes %s's route, neighbour and FDB entries", n.Name, gone.Name), func() (bool, string) {
			e := peerState(n, cidr, mac, gone.IP)
			return e == (peerEntries{}), fmt.Sprintf("left: %+v", e)
		})
	}
}

// leave takes the node out of the cluster as an operator does before
// deleting its Node object: drain it (kubelet stops its pods and reclaims
// their volumes and cgroups), then stop kubelet and kube-proxy and remove
// the stopped sandboxes kubelet's garbage collection would have. The
// runtime keeps running; cleanup stops it.
func (n *Node) leave(t *testing.T) {
	t.Helper()
	n.c.kubectl(t, "drain", n.Name, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--grace-period", "1", "--timeout", "90s")
	for _, p := range []*harness.Process{n.proxy, n.kubelet} {
		if p.Running() && !p.Signal(syscall.SIGTERM, 20*time.Second) {
			t.Fatalf("%s did not exit within 20s of SIGTERM", p.Name)
		}
	}
	out, e, err := crictl(n.Socket, "pods", "-q")
	if err != nil {
		t.Fatalf("%s: crictl pods: %v: %s", n.Name, err, e)
	}
	for _, id := range strings.Fields(out) {
		if _, e, err := crictl(n.Socket, "rmp", "-f", id); err != nil {
			t.Fatalf("%s: crictl rmp %s: %v: %s", n.Name, id, err, e)
		}
	}
}
