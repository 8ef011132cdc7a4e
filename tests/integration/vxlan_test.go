//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// tcpDelivers checks that msg sent over TCP from the client's namespace
// (clientNS, a command prefix) reaches a server listening on port in the
// server's namespace (serverNS). Each try starts the server, waits until
// its socket is in LISTEN (so a client on a loaded machine never races the
// listener), sends once, and counts as delivered only when the server
// printed msg: the client's exit status alone says it wrote into its
// socket, not that the bytes arrived. Tries repeat until timeout, so a
// path that is not up yet (routes, ARP) is waited for.
func tcpDelivers(t *testing.T, what string, serverNS, clientNS []string, ip string, port int, msg string) {
	t.Helper()
	eventually(t, 20*time.Second, what, func() (bool, string) {
		got, err := tcpExchange(serverNS, clientNS, ip, port, msg)
		return err == nil && strings.Contains(got, msg), fmt.Sprintf("server got %q, want %q: %v", got, msg, err)
	})
}

// tcpExchange runs one server and one client; it returns what the server
// received.
func tcpExchange(serverNS, clientNS []string, ip string, port int, msg string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	srvCmd := append(append([]string{}, serverNS...), "busybox", "nc", "-l", "-p", fmt.Sprint(port))
	srv := exec.CommandContext(ctx, srvCmd[0], srvCmd[1:]...)
	var got strings.Builder
	srv.Stdout = &got
	if err := srv.Start(); err != nil {
		return "", err
	}
	done := false
	defer func() {
		if !done {
			cancel()
			srv.Wait()
		}
	}()
	if err := waitListening(ctx, serverNS, port); err != nil {
		return "", err
	}
	if o, err := out(append(append([]string{}, clientNS...), "sh", "-c", "echo "+msg+" | busybox nc -w 2 "+ip+" "+fmt.Sprint(port))); err != nil {
		return "", fmt.Errorf("client: %v: %s", err, o)
	}
	err := srv.Wait()
	done = true
	if err != nil {
		return got.String(), fmt.Errorf("server: %w", err)
	}
	return got.String(), nil
}

// waitListening polls the namespace's /proc/net/tcp{,6} until a socket
// listens on port.
func waitListening(ctx context.Context, ns []string, port int) error {
	want := fmt.Sprintf(":%04X", port)
	for {
		o, _ := out(append(append([]string{}, ns...), "cat", "/proc/net/tcp", "/proc/net/tcp6"))
		for _, line := range strings.Split(o, "\n") {
			f := strings.Fields(line)
			// sl local_address rem_address st ...; st 0A is LISTEN.
			if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no listener on port %d: %w", port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
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
		tcpDelivers(t, "TCP "+from.name+" → "+toIP+":5000", to.inPod(toPod), from.inPod(fromPod), toIP, 5000, "hello-from-"+from.name)
	}
	tcp(n1, a, n2, b, ipB)
	tcp(n2, b, n1, a, ipA)

	// Path: node1's bridge gateway, node2's flannel.1 address, the pod.
	// A lost probe shows as "*": poll until one run sees every hop.
	eventually(t, 15*time.Second, "traceroute pod A → pod B via node2's flannel.1", func() (bool, string) {
		o, err := out(n1.inPod(a, "busybox", "traceroute", "-n", "-w", "1", "-q", "1", ipB))
		hops := strings.Join(strings.Fields(o), " ")
		ok := err == nil && strings.Contains(hops, "10.244.1.1") && strings.Contains(hops, "10.244.2.0") && strings.Contains(hops, ipB)
		return ok, fmt.Sprintf("%v: %s (want hops 10.244.1.1, 10.244.2.0, %s)", err, o, ipB)
	})

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

// TestVXLANPodCycles: 200 pods run, stopped and removed one after another on
// one node, through cribd, leave no allocation, veth, netns pin, cached CNI
// result or iptables rule beyond the node's own (those the first pod made).
func TestVXLANPodCycles(t *testing.T) {
	c := newVXCluster(t, "10.244.6.0/24")
	n := c.nodes[0]
	rs := n.cri(t)
	eventually(t, 10*time.Second, "NetworkReady", func() (bool, string) { return networkReady(t, rs) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const cycles = 200
	var baseline string
	began := time.Now()
	for i := 0; i < cycles; i++ {
		resp, err := rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("vx-cycle-%d", i), Namespace: "crib-vx", Uid: fmt.Sprintf("uid-vx-cycle-%d", i)},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{},
		}})
		if err != nil {
			t.Fatalf("cycle %d: RunPodSandbox: %v\n%s", i, err, tail(n.log(), 30))
		}
		id := resp.PodSandboxId
		if i == 0 {
			st, err := rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
			if err != nil {
				t.Fatal(err)
			}
			if ip := st.GetStatus().GetNetwork().GetIp(); !strings.HasPrefix(ip, "10.244.6.") {
				t.Fatalf("first pod's IP %q: want 10.244.6.x", ip)
			}
		}
		if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("cycle %d: StopPodSandbox: %v", i, err)
		}
		if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("cycle %d: RemovePodSandbox: %v", i, err)
		}
		if i == 0 {
			baseline = iptablesState(t, n.inNode())
		}
	}
	t.Logf("%d pod run/stop/remove cycles in %s", cycles, time.Since(began).Round(time.Millisecond))

	if a := ipAllocations(filepath.Join(n.dir, "ipam", "crib")); len(a) != 0 {
		t.Errorf("allocations left after %d cycles: %v", cycles, a)
	}
	if o := run(t, n.inNode("ip", "-o", "link", "show", "type", "veth")...); strings.Contains(o, "master cni0") {
		t.Errorf("veths left on cni0 after %d cycles:\n%s", cycles, o)
	}
	if ents, _ := os.ReadDir(n.netnsDir); len(ents) != 0 {
		t.Errorf("%d netns pins left after %d cycles", len(ents), cycles)
	}
	if ents, _ := os.ReadDir(filepath.Join(n.dir, "cni-cache", "results")); len(ents) != 0 {
		t.Errorf("%d cached CNI results left after %d cycles", len(ents), cycles)
	}
	if got := iptablesState(t, n.inNode()); got != baseline {
		t.Errorf("iptables after %d cycles differ from after the first:\nfirst:\n%s\nlast:\n%s", cycles, baseline, got)
	}
}

// capture is a tcpdump running in a namespace the test made.
type capture struct {
	cmd  *exec.Cmd
	out  strings.Builder
	done chan struct{}
}

// startCapture runs tcpdump with inNS prefixed until it has count packets or
// 15s pass, and returns once it listens.
func startCapture(t *testing.T, inNS []string, iface string, count int, filter ...string) *capture {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump not installed")
	}
	args := append(append([]string{}, inNS...), "timeout", "15", "tcpdump", "-nn", "-l", "-i", iface, "-c", fmt.Sprint(count))
	c := &capture{cmd: exec.Command(args[0], append(args[1:], filter...)...), done: make(chan struct{})}
	c.cmd.Stdout = &c.out
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "listening on") {
				once = true
				close(listening)
			}
		}
		if !once {
			close(listening)
		}
	}()
	t.Cleanup(func() { c.cmd.Process.Kill(); c.wait() })
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start listening")
	}
	return c
}

// wait returns what tcpdump printed once it exits.
func (c *capture) wait() string {
	<-c.done
	c.cmd.Wait()
	return c.out.String()
}

// TestVXLANMasquerade: a pod reaching an address outside the cluster
// network arrives there with its node's underlay address as source; a pod
// reaching a pod on another node arrives with its own pod IP. "Outside" is
// one more namespace on the underlay bridge, 192.168.50.200, routing
// 198.51.100.0/24 (TEST-NET-2) for node 1 and with no route back into
// 10.244.0.0/16: replies reach the pod only through the masquerade.
func TestVXLANMasquerade(t *testing.T) {
	c := newVXCluster(t, "10.244.1.0/24", "10.244.2.0/24")
	n1, n2 := c.nodes[0], c.nodes[1]
	outNS := "cvxo-" + c.id
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", outNS).Run() })
	run(t, "ip", "netns", "add", outNS)
	run(t, "ip", "-n", c.underNS, "link", "add", "uo", "type", "veth", "peer", "name", "eth0", "netns", outNS)
	run(t, "ip", "-n", c.underNS, "link", "set", "uo", "master", "br0", "up")
	run(t, "ip", "-n", outNS, "addr", "add", "192.168.50.200/24", "dev", "eth0")
	run(t, "ip", "-n", outNS, "addr", "add", "198.51.100.1/24", "dev", "eth0")
	run(t, "ip", "-n", outNS, "link", "set", "eth0", "up")
	run(t, "ip", "-n", outNS, "link", "set", "lo", "up")
	run(t, n1.inNode("ip", "route", "add", "198.51.100.0/24", "via", "192.168.50.200")...)
	for _, n := range c.nodes {
		rs := n.cri(t)
		eventually(t, 10*time.Second, n.name+" NetworkReady", func() (bool, string) { return networkReady(t, rs) })
	}
	a, ipA := n1.runPod("vx-masq-a")
	b, ipB := n2.runPod("vx-masq-b")
	inOut := []string{"ip", "netns", "exec", outNS}

	// Outside: ping and a TCP exchange, captured on the outside's eth0.
	capOut := startCapture(t, inOut, "eth0", 2, "icmp[icmptype] == icmp-echo or (tcp dst port 5002 and tcp[tcpflags] & tcp-syn != 0)")
	pingOK(t, "pod A (node1) → outside 198.51.100.1", n1.inPod(a, "busybox", "ping", "-c1", "-W1", "198.51.100.1"))
	tcpDelivers(t, "TCP pod A → outside 198.51.100.1:5002", inOut, n1.inPod(a), "198.51.100.1", 5002, "hello-outside")
	seen := capOut.wait()
	t.Logf("capture outside:\n%s", seen)
	if !strings.Contains(seen, "192.168.50.11 > 198.51.100.1: ICMP echo request") ||
		!regexp.MustCompile(`192\.168\.50\.11\.\d+ > 198\.51\.100\.1\.5002: Flags \[S\]`).MatchString(seen) || strings.Contains(seen, "10.244.") {
		t.Errorf("outside saw:\n%s\nwant the ping and the SYN from node1's underlay address 192.168.50.11, none from 10.244.x", seen)
	}

	// Pod to pod across nodes: not masqueraded.
	bNet := n2.inPod(b)
	capPod := startCapture(t, bNet, "eth0", 2, "(icmp[icmptype] == icmp-echo) or (tcp dst port 5003 and tcp[tcpflags] & tcp-syn != 0)")
	pingOK(t, "pod A (node1) → pod B (node2)", n1.inPod(a, "busybox", "ping", "-c1", "-W1", ipB))
	tcpDelivers(t, "TCP pod A → pod B:5003", bNet, n1.inPod(a), ipB, 5003, "hello-pod")
	seen = capPod.wait()
	t.Logf("capture in pod B:\n%s", seen)
	if !strings.Contains(seen, ipA+" > "+ipB+": ICMP echo request") ||
		!regexp.MustCompile(regexp.QuoteMeta(ipA)+`\.\d+ > `+regexp.QuoteMeta(ipB)+`\.5003: Flags \[S\]`).MatchString(seen) {
		t.Errorf("pod B saw:\n%s\nwant the ping and the SYN from pod A's IP %s", seen, ipA)
	}
}

// TestVXLANPodCIDRChange: when kubelet changes the node's pod CIDR, the next
// pod gets an address of the new subnet, and the node keeps nothing of the
// old one: cni0 holds only the new gateway, flannel.1 only the new network
// address, crib's nftables table only the new subnet's masquerade.
func TestVXLANPodCIDRChange(t *testing.T) {
	c := newVXCluster(t, "")
	n := c.nodes[0]
	rs := n.cri(t)
	setCIDR := func(cidr string) {
		t.Helper()
		if _, err := rs.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{
			RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}},
		}); err != nil {
			t.Fatalf("UpdateRuntimeConfig %s: %v", cidr, err)
		}
		gw := strings.TrimSuffix(cidr, "0/24") + "1/24"
		eventually(t, 10*time.Second, "subnet file says "+gw, func() (bool, string) {
			b, _ := os.ReadFile(filepath.Join(n.dir, "subnet.env"))
			return strings.Contains(string(b), "FLANNEL_SUBNET="+gw), string(b)
		})
		eventually(t, 10*time.Second, "NetworkReady", func() (bool, string) { return networkReady(t, rs) })
	}
	setCIDR("10.244.2.0/24")
	if _, ip := n.runPod("vx-old"); !strings.HasPrefix(ip, "10.244.2.") {
		t.Fatalf("pod IP %q: want 10.244.2.x", ip)
	}
	setCIDR("10.244.4.0/24")
	if _, ip := n.runPod("vx-new"); !strings.HasPrefix(ip, "10.244.4.") {
		t.Fatalf("pod IP after the change %q: want 10.244.4.x", ip)
	}
	if a := run(t, n.inNode("ip", "-o", "-4", "addr", "show", "cni0")...); strings.Count(a, "inet ") != 1 || !strings.Contains(a, "inet 10.244.4.1/24") {
		t.Errorf("cni0:\n%s\nwant only 10.244.4.1/24", a)
	}
	if r := run(t, n.inNode("ip", "route", "show", "dev", "cni0")...); strings.Contains(r, "10.244.2.") {
		t.Errorf("routes on cni0:\n%s\nwant none into the old subnet", r)
	}
	if a := run(t, n.inNode("ip", "-o", "-4", "addr", "show", "flannel.1")...); strings.Count(a, "inet ") != 1 || !strings.Contains(a, "inet 10.244.4.0/32") {
		t.Errorf("flannel.1:\n%s\nwant only 10.244.4.0/32", a)
	}
	if p := run(t, n.inNode("nft", "list", "table", "ip", "crib-vxlan")...); strings.Contains(p, "10.244.2.0/24") || !strings.Contains(p, "ip saddr 10.244.4.0/24 masquerade") {
		t.Errorf("table ip crib-vxlan:\n%s\nwant the masquerade of 10.244.4.0/24 only", p)
	}
	eventually(t, 10*time.Second, "lease names the new subnet", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(c.leaseDir, n.name+".json"))
		return strings.Contains(string(b), `"subnet": "10.244.4.0/24"`), string(b)
	})
}

// TestVXLANPeerPodCIDRChange: when a peer's pod CIDR changes and nothing
// else (same VTEP MAC, same underlay address), the other node replaces its
// entries: a route and a neighbour for the new subnet, none left for the
// old one, the FDB entry kept. flannel's kube subnet manager misses this
// case (its update handler compares annotations only); crib's KubeSource
// signals it (network/overlay TestKubeSourcePeers) and programPeers, run
// here, must follow. Pods then reach each other on the new subnet.
func TestVXLANPeerPodCIDRChange(t *testing.T) {
	c := newVXCluster(t, "10.244.1.0/24", "")
	n1, n2 := c.nodes[0], c.nodes[1]
	rs2 := n2.cri(t)
	setCIDR := func(cidr string) {
		t.Helper()
		if _, err := rs2.UpdateRuntimeConfig(context.Background(), &runtimeapi.UpdateRuntimeConfigRequest{
			RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: cidr}},
		}); err != nil {
			t.Fatalf("UpdateRuntimeConfig %s: %v", cidr, err)
		}
	}
	mac2 := func() string {
		return strings.TrimSpace(run(t, n2.inNode("cat", "/sys/class/net/flannel.1/address")...))
	}
	entries := func(sub string) func() (bool, string) {
		return func() (bool, string) {
			r, _ := out(n1.inNode("ip", "route", "show", "dev", "flannel.1"))
			nb, _ := out(n1.inNode("ip", "neigh", "show", "dev", "flannel.1"))
			fdb, _ := out(n1.inNode("bridge", "fdb", "show", "dev", "flannel.1"))
			ok := strings.Contains(r, sub+"/24 via "+sub+" onlink") &&
				strings.Contains(nb, sub+" lladdr "+mac2()+" PERMANENT") &&
				strings.Contains(fdb, mac2()+" dst "+n2.ip+" self permanent")
			return ok, fmt.Sprintf("routes:\n%s\nneigh:\n%s\nfdb:\n%s", r, nb, fdb)
		}
	}
	setCIDR("10.244.2.0/24")
	eventually(t, 10*time.Second, "node1 has node2's entries for 10.244.2.0/24", entries("10.244.2.0"))
	macBefore := mac2()

	setCIDR("10.244.4.0/24")
	eventually(t, 10*time.Second, "node1 has node2's entries for 10.244.4.0/24", entries("10.244.4.0"))
	eventually(t, 10*time.Second, "node1 keeps nothing of 10.244.2.0/24", func() (bool, string) {
		r, _ := out(n1.inNode("ip", "route", "show", "dev", "flannel.1"))
		nb, _ := out(n1.inNode("ip", "neigh", "show", "dev", "flannel.1"))
		return !strings.Contains(r+nb, "10.244.2."), r + nb
	})
	if m := mac2(); m != macBefore {
		t.Fatalf("node2's VTEP MAC changed (%s → %s): the test no longer changes the pod CIDR alone", macBefore, m)
	}
	a, ipA := n1.runPod("vx-cidr-a")
	b, ipB := n2.runPod("vx-cidr-b")
	if !strings.HasPrefix(ipB, "10.244.4.") {
		t.Fatalf("node2's pod IP %s: want 10.244.4.x", ipB)
	}
	pingOK(t, "pod A (node1) → pod B (node2, new subnet)", n1.inPod(a, "busybox", "ping", "-c1", "-W1", ipB))
	pingOK(t, "pod B (node2, new subnet) → pod A (node1)", n2.inPod(b, "busybox", "ping", "-c1", "-W1", ipA))
}
