//go:build integration && bench

package integration

// The overlay benchmark (`make bench`): CNI ADD latency through libcni,
// crib-vxlan against the standard bridge plugin doing the same pod work
// (gateway, hairpin, host-local; bridge also checks its masquerade rules at
// each ADD, which for crib-vxlan cribd sets once per node), and TCP throughput between
// pods on two nodes over flannel.1 against node to node on the underlay.
// Everything runs in namespaces the benchmark makes. It reports; it asserts
// nothing about speed (targets: ADD p50 within 1.5x of bridge's, overlay
// throughput at least 70% of the underlay's).

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/crib-runtime/crib/tests/harness"
)

const (
	vxBenchWarmup = 5
	vxBenchAdds   = 100
	// Each throughput sample sends vxBenchBytes and must finish within
	// vxBenchTimeout; vxBenchRounds samples of each path, interleaved.
	vxBenchBlocks  = 8192 // of 64 KiB: 512 MiB
	vxBenchBytes   = vxBenchBlocks * 64 << 10
	vxBenchTimeout = 60 * time.Second
	vxBenchRounds  = 7
)

// TestBenchVXLANAdd: p50 of 100 ADDs and of their DELs through libcni, in
// throwaway node namespaces, the plugins interleaved so that load from
// elsewhere on the machine falls on all of them alike.
func TestBenchVXLANAdd(t *testing.T) {
	type subject struct {
		name string
		node *cniNode
		list *libcni.NetworkConfigList
		pod  string
		took []time.Duration
		del  []time.Duration
	}
	vx := newCNINode(t)
	vx.vxlanList("10.244.7.0/24") // the subnet file
	br := newCNINode(t)
	dflt := newCNINode(t)
	subjects := []*subject{
		{name: "crib-vxlan", node: vx, list: vx.list(fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "crib", "plugins": [
			{"type": "crib-vxlan", "bridge": "cni0", "subnetFile": %q, "dataDir": %q}]}`,
			filepath.Join(vx.dir, "subnet.env"), filepath.Join(vx.dir, "ipam")))},
		{name: "bridge", node: br, list: br.list(fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "crib", "plugins": [
			{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true, "mtu": 1450,
			 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.7.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}]}`,
			filepath.Join(br.dir, "ipam")))},
		{name: "crib-vxlan + portmap (default conflist)", node: dflt, list: dflt.vxlanList("10.244.7.0/24")},
	}
	for _, s := range subjects {
		s.pod = s.node.newPodNS()
	}
	for i := 0; i < vxBenchWarmup+vxBenchAdds; i++ {
		for _, s := range subjects {
			rt := rtFor(fmt.Sprintf("bench-add-%d", i), s.pod, nil)
			begin := time.Now()
			if _, err := s.node.add(s.list, rt); err != nil {
				t.Fatalf("%s: ADD %d: %v", s.name, i, err)
			}
			took := time.Since(begin)
			begin = time.Now()
			if err := s.node.del(s.list, rt); err != nil {
				t.Fatalf("%s: DEL %d: %v", s.name, i, err)
			}
			if i >= vxBenchWarmup {
				s.took = append(s.took, took)
				s.del = append(s.del, time.Since(begin))
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CNI ADD and DEL through libcni (n=%d after %d warm-up, DEL after each ADD):\n", vxBenchAdds, vxBenchWarmup)
	fmt.Fprintf(&b, "  %-40s %10s %10s %10s %10s %10s\n", "plugin", "ADD p50", "ADD p90", "vs bridge", "DEL p50", "DEL p90")
	base := pct(subjects[1].took, 50)
	for _, s := range subjects {
		p50 := pct(s.took, 50)
		fmt.Fprintf(&b, "  %-40s %10s %10s %9.2fx %10s %10s\n", s.name, p50.Round(100*time.Microsecond),
			pct(s.took, 90).Round(100*time.Microsecond), float64(p50)/float64(base),
			pct(s.del, 50).Round(100*time.Microsecond), pct(s.del, 90).Round(100*time.Microsecond))
	}
	benchReport(b.String())
}

// TestBenchVXLANThroughput: TCP from a pod on node 1 to a pod on node 2
// (over flannel.1) and from node 1 to node 2 on the underlay, in one run,
// 512 MiB per sample, the paths interleaved, the medians reported.
// busybox nc only connects: on each side it hands the socket to busybox dd
// (-e), which writes and reads it in 64 KiB blocks; piped through nc the
// data would move in small writes and nc, not the network, would be what
// is measured (about 30 MB/s on any path). Loopback in node 1 is the tools'
// own ceiling.
func TestBenchVXLANThroughput(t *testing.T) {
	c := newVXCluster(t, "10.244.1.0/24", "10.244.2.0/24")
	n1, n2 := c.nodes[0], c.nodes[1]
	for _, n := range c.nodes {
		rs := n.cri(t)
		eventually(t, 10*time.Second, n.name+" NetworkReady", func() (bool, string) { return networkReady(t, rs) })
	}
	a, _ := n1.runPod("vx-bench-a")
	b, ipB := n2.runPod("vx-bench-b")
	type path struct {
		name     string
		from, to []string // command prefixes: sender's and receiver's netns
		dst      string
		mbps     []float64
	}
	paths := []*path{
		{name: "underlay, node1 → node2", from: n1.inNode(), to: n2.inNode(), dst: n2.ip},
		{name: "overlay, pod on node1 → pod on node2", from: n1.inPod(a), to: n2.inPod(b), dst: ipB},
		{name: "loopback in node1 (tool ceiling)", from: n1.inNode(), to: n1.inNode(), dst: "127.0.0.1"},
	}
	port := 5100
	for r := 0; r < vxBenchRounds; r++ {
		for _, p := range paths {
			port++
			took := tcpTransfer(t, p.from, p.to, p.dst, port)
			p.mbps = append(p.mbps, float64(vxBenchBytes)/took.Seconds()/1e6)
		}
	}
	// "vs underlay" is the median of each round's ratio to the underlay
	// sample taken just before: the machine's load drifts less between
	// two adjacent samples than over the run.
	var out strings.Builder
	fmt.Fprintf(&out, "TCP throughput (%d MiB per sample, %d rounds, busybox nc -e dd):\n", vxBenchBytes>>20, vxBenchRounds)
	fmt.Fprintf(&out, "  %-40s %10s %10s  %s\n", "path", "MB/s p50", "vs under", "samples (MB/s)")
	for _, p := range paths {
		var s []string
		var ratios []float64
		for i, v := range p.mbps {
			s = append(s, fmt.Sprintf("%.0f", v))
			ratios = append(ratios, v/paths[0].mbps[i])
		}
		fmt.Fprintf(&out, "  %-40s %10.0f %9.0f%%  %s\n", p.name, median(p.mbps), 100*median(ratios), strings.Join(s, " "))
	}
	benchReport(out.String())
}

// tcpTransfer sends vxBenchBytes from the from namespace to dst:port, served
// in the to namespace, and returns the time from the sender's start to the
// receiver's end (it has read everything).
func tcpTransfer(t *testing.T, from, to []string, dst string, port int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vxBenchTimeout)
	defer cancel()
	srvArgs := append(append([]string{}, to...), "busybox", "nc", "-l", "-p", fmt.Sprint(port), "-e", "busybox", "dd", "of=/dev/null", "bs=64k")
	srv := exec.CommandContext(ctx, srvArgs[0], srvArgs[1:]...)
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Wait() }()
	eventually(t, 10*time.Second, fmt.Sprintf("receiver listens on %d", port), func() (bool, string) {
		o, _ := out(append(append([]string{}, to...), "ss", "-Hltn", fmt.Sprintf("sport = :%d", port)))
		return strings.Contains(o, "LISTEN"), o
	})
	cliArgs := append(append([]string{}, from...), "busybox", "nc", dst, fmt.Sprint(port),
		"-e", "busybox", "dd", "if=/dev/zero", "bs=64k", fmt.Sprintf("count=%d", vxBenchBlocks))
	begin := time.Now()
	if o, err := exec.CommandContext(ctx, cliArgs[0], cliArgs[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("sender to %s:%d: %v: %s", dst, port, err, o)
	}
	if err := <-srvDone; err != nil {
		t.Fatalf("receiver on %d: %v: %s", port, err, srvOut.String())
	}
	took := time.Since(begin)
	if !strings.Contains(srvOut.String(), "records out") {
		t.Fatalf("receiver on %d: %s", port, srvOut.String())
	}
	return took
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// benchReport prints a report and appends it to $CRIB_BENCH_OUT if set.
func benchReport(report string) {
	if err := harness.BenchReport(report); err != nil {
		fmt.Println(err)
	}
}
