//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// out runs cmd and returns its combined output and error.
func out(cmd []string) (string, error) {
	b, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
	return string(b), err
}

// TestVXLANCrossNode: three nodes, each with its own cribd; node 2 learns
// its subnet from UpdateRuntimeConfig. Pods on nodes 1 and 2 reach each
// other by pod IP over flannel.1; each node holds the VTEP and the peer
// entries; node 3's entries go when its lease goes.
func TestVXLANCrossNode(t *testing.T) {
	c := newVXCluster(t, "10.244.1.0/24", "", "10.244.3.0/24")
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	rs2 := n2.cri(t)
	if ok, msg := networkReady(t, rs2); ok || !strings.Contains(msg, "pod CIDR unknown") {
		t.Errorf("node2 before UpdateRuntimeConfig: NetworkReady %v %q, want false naming the missing pod CIDR", ok, msg)
	}
	if _, err := rs2.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.244.2.0/24"}},
	}); err != nil {
		t.Fatalf("UpdateRuntimeConfig: %v", err)
	}
	for _, n := range c.nodes {
		rs := n.cri(t)
		eventually(t, 10*time.Second, n.name+" NetworkReady", func() (bool, string) { return networkReady(t, rs) })
		if _, err := os.Stat(filepath.Join(n.dir, "net.d", "10-crib-vxlan.conflist")); err != nil {
			t.Errorf("%s: default conflist: %v", n.name, err)
		}
	}

	for _, n := range c.nodes {
		link := run(t, n.inNode("ip", "-d", "link", "show", "flannel.1")...)
		for _, want := range []string{"vxlan id 1 ", "local " + n.ip, "dstport 8472", "nolearning", "mtu 1450"} {
			if !strings.Contains(link, want) {
				t.Errorf("%s: ip -d link show flannel.1:\n%s\nwant %q", n.name, link, want)
			}
		}
	}
	macs := map[string]string{}
	for _, n := range c.nodes {
		l := run(t, n.inNode("cat", "/sys/class/net/flannel.1/address")...)
		macs[n.name] = strings.TrimSpace(l)
	}
	peerEntries := func(n *vxNode, m *vxNode) (bool, string) {
		sub := fmt.Sprintf("10.244.%d.0", m.i)
		r, _ := out(n.inNode("ip", "route", "show", "dev", "flannel.1"))
		nb, _ := out(n.inNode("ip", "neigh", "show", "dev", "flannel.1"))
		fdb, _ := out(n.inNode("bridge", "fdb", "show", "dev", "flannel.1"))
		ok := strings.Contains(r, sub+"/24 via "+sub+" onlink") &&
			strings.Contains(nb, sub+" lladdr "+macs[m.name]+" PERMANENT") &&
			strings.Contains(fdb, macs[m.name]+" dst "+m.ip+" self permanent")
		return ok, fmt.Sprintf("routes:\n%s\nneigh:\n%s\nfdb:\n%s", r, nb, fdb)
	}
	for _, n := range c.nodes {
		for _, m := range c.nodes {
			if n != m {
				eventually(t, 10*time.Second, n.name+" has "+m.name+"'s route, neighbour and FDB entry", func() (bool, string) { return peerEntries(n, m) })
			}
		}
	}

	a, ipA := n1.runPod("vx-a")
	b, ipB := n2.runPod("vx-b")
	if !strings.HasPrefix(ipA, "10.244.1.") || !strings.HasPrefix(ipB, "10.244.2.") {
		t.Fatalf("pod IPs %s (node1) and %s (node2): want 10.244.1.x and 10.244.2.x", ipA, ipB)
	}
	if l := run(t, n1.inPod(a, "ip", "-o", "link", "show", "eth0")...); !strings.Contains(l, "mtu 1450") {
		t.Errorf("pod eth0: %s: want mtu 1450", l)
	}

	// A capture on the underlay bridge while the pods ping.
	var capOut string
	var capWG sync.WaitGroup
	if _, err := exec.LookPath("tcpdump"); err == nil {
		capWG.Add(1)
		go func() {
			defer capWG.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			o, _ := exec.CommandContext(ctx, "ip", "netns", "exec", c.underNS, "tcpdump", "-nn", "-l", "-T", "vxlan", "-c", "2", "-i", "br0", "udp", "port", "8472").CombinedOutput()
			capOut = string(o)
		}()
		time.Sleep(500 * time.Millisecond) // let tcpdump attach; only delays the pings
	}
	pingOK(t, "pod A (node1) → pod B (node2)", n1.inPod(a, "busybox", "ping", "-c1", "-W1", ipB))
	pingOK(t, "pod B (node2) → pod A (node1)", n2.inPod(b, "busybox", "ping", "-c1", "-W1", ipA))
	capWG.Wait()
	if capOut != "" && !strings.Contains(capOut, "VXLAN") && !strings.Contains(capOut, ".8472") {
		t.Errorf("underlay capture shows no UDP 8472:\n%s", capOut)
	} else if capOut != "" {
		t.Logf("underlay capture:\n%s", capOut)
		if !strings.Contains(capOut, "vni 1") {
			t.Errorf("underlay capture shows no VNI 1:\n%s", capOut)
		}
	}

	tcp := func(from *vxNode, fromPod string, to *vxNode, toPod, toIP string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		srv := exec.CommandContext(ctx, to.inPod(toPod, "busybox", "nc", "-l", "-p", "5000")[0], to.inPod(toPod, "busybox", "nc", "-l", "-p", "5000")[1:]...)
		var got strings.Builder
		srv.Stdout = &got
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		msg := "hello-from-" + from.name
		eventually(t, 10*time.Second, "TCP "+from.name+" → "+toIP+":5000", func() (bool, string) {
			o, err := out(from.inPod(fromPod, "sh", "-c", "echo "+msg+" | busybox nc -w 2 "+toIP+" 5000"))
			return err == nil, o
		})
		srv.Wait()
		if !strings.Contains(got.String(), msg) {
			t.Errorf("TCP %s → %s: server got %q, want %q", from.name, toIP, got.String(), msg)
		}
	}
	tcp(n1, a, n2, b, ipB)
	tcp(n2, b, n1, a, ipA)

	// Path: node1's bridge gateway, node2's flannel.1 address, the pod.
	if o, err := out(n1.inPod(a, "busybox", "traceroute", "-n", "-w", "1", "-q", "1", ipB)); err == nil {
		hops := strings.Join(strings.Fields(o), " ")
		if !strings.Contains(hops, "10.244.1.1") || !strings.Contains(hops, "10.244.2.0") || !strings.Contains(hops, ipB) {
			t.Errorf("traceroute %s:\n%s\nwant hops 10.244.1.1, 10.244.2.0, %s", ipB, o, ipB)
		}
	}

	// Node 3 leaves: its lease goes, and its entries go on the others.
	n3.stop()
	if err := os.Remove(filepath.Join(c.leaseDir, "node3.json")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*vxNode{n1, n2} {
		eventually(t, 5*time.Second, n.name+" drops node3's entries", func() (bool, string) {
			r, _ := out(n.inNode("ip", "route", "show", "dev", "flannel.1"))
			nb, _ := out(n.inNode("ip", "neigh", "show", "dev", "flannel.1"))
			fdb, _ := out(n.inNode("bridge", "fdb", "show", "dev", "flannel.1"))
			all := r + nb + fdb
			gone := !strings.Contains(all, "10.244.3.0") && !strings.Contains(all, macs["node3"]) && !strings.Contains(all, n3.ip)
			return gone, all
		})
		if ok, why := peerEntries(n, map[*vxNode]*vxNode{n1: n2, n2: n1}[n]); !ok {
			t.Errorf("%s lost its other peer's entries: %s", n.name, why)
		}
	}
}

// TestVXLANConcurrentAdds: 20 pods started at once on one node get 20
// distinct addresses of the node subnet, and removing them leaves no
// allocation and no veth.
func TestVXLANConcurrentAdds(t *testing.T) {
	c := newVXCluster(t, "10.244.5.0/24")
	n := c.nodes[0]
	rs := n.cri(t)
	eventually(t, 10*time.Second, "NetworkReady", func() (bool, string) { return networkReady(t, rs) })
	const count = 20
	var mu sync.Mutex
	ips := map[string]string{}
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id, ip := n.runPod(fmt.Sprintf("vx-c%d", i))
			mu.Lock()
			ips[id] = ip
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for id, ip := range ips {
		if !strings.HasPrefix(ip, "10.244.5.") || seen[ip] {
			t.Errorf("pod %s: IP %q: want a distinct 10.244.5.x", id, ip)
		}
		seen[ip] = true
	}
	if len(seen) != count {
		t.Errorf("%d distinct IPs, want %d", len(seen), count)
	}
	for id := range ips {
		if _, e, err := n.crictlRaw("stopp", id); err != nil {
			t.Errorf("stopp %s: %v: %s", id, err, e)
		}
		n.crictlRaw("rmp", id)
	}
	ents, _ := os.ReadDir(filepath.Join(n.dir, "ipam", "crib"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "10.") {
			t.Errorf("allocation left after removing every pod: %s", e.Name())
		}
	}
	if o := run(t, n.inNode("ip", "-o", "link", "show", "type", "veth")...); strings.Count(o, "master cni0") != 0 {
		t.Errorf("veths left on cni0:\n%s", o)
	}
}
