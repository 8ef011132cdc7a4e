//go:build cluster && bench

package cluster

// TestBenchCluster is make bench-cluster (build tags cluster and bench,
// so make test-cluster does not run it): one cluster, the harness's
// control plane, with three crib nodes and three containerd 2.4.2 +
// flanneld nodes side by side, each kind measured in the same run:
//
//   - a 30-replica Deployment pinned to one kind by a node label and
//     spread 10 per node: time from `kubectl apply` to `kubectl rollout
//     status` returning (all 30 Ready, no readiness probe, so Ready is
//     "every container started" as kubelet sees it); one warm-up round,
//     then CRIB_BENCH_CLUSTER_ROUNDS rounds (3), the kinds alternating
//     which goes first; between rounds the Deployment is deleted and the
//     test waits until its pods are gone from the API and every sandbox
//     is removed from the runtimes;
//   - memory per node with those 10 pods: PSS of the runtime daemon (for
//     crib, cribd with its overlay inside), every shim of the node, and
//     flanneld on the flannel nodes;
//   - TCP throughput of one stream, pod on one node to pod on another
//     over the overlay, against the same tool between the two nodes'
//     underlay addresses (testdata/tcpstream, a static Go program the
//     test builds and gives the pods through a hostPath volume; under
//     testdata so that ./tests/cluster/... stays one package and go test
//     -v streams its output).
//
// It reports through harness.BenchReport; it asserts no timings. The
// cluster's cleanup and leak check are TestCluster's.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

const (
	benchReplicas  = 30
	benchNodes     = 3 // per kind
	benchKindLabel = "crib-bench/kind"
	// benchSettle is how long the pods run before memory is read: the
	// shims and daemons past their start-up allocations.
	benchSettle = 10 * time.Second
	// benchStreamFor is each throughput run's length; benchStreams the
	// runs per path, alternating.
	benchStreamFor = 5 * time.Second
	benchStreams   = 5
)

// benchRounds is the number of timed Deployment rounds per kind.
func benchRounds(t *testing.T) int {
	s := os.Getenv("CRIB_BENCH_CLUSTER_ROUNDS")
	if s == "" {
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("CRIB_BENCH_CLUSTER_ROUNDS=%q: want a positive number", s)
	}
	return n
}

// benchGroup is one kind's nodes and what was measured on them.
type benchGroup struct {
	title  string // in the report
	label  string // the nodes' benchKindLabel value
	nodes  []*Node
	mem    func(n *Node) memSample
	warmup time.Duration
	ready  []time.Duration
	loads  []string // load average when each timed round began
	mems   []memSample
	// overlay and underlay throughput, MB/s; the client pod's and its
	// node's interface MTU.
	overlay, underlay []float64
	podMTU, nodeMTU   string
}

// memSample is one node's PSS, KiB.
type memSample struct {
	daemon, agent, shims, nShims int
}

func (m memSample) total() int { return m.daemon + m.agent + m.shims }

func TestBenchCluster(t *testing.T) {
	fk := newFlannelKind()
	if m := fk.missing(); m != "" {
		t.Fatalf("no %s (scripts/build-flannel.sh, scripts/build-containerd.sh; make bench-cluster builds them)", m)
	}
	loadStart := loadavg()
	start := time.Now()
	c := newCluster(t)
	ck := newCribKind()
	crib := &benchGroup{title: "crib", label: "crib", mem: cribMem(ck)}
	flan := &benchGroup{title: "containerd 2.4.2 + flanneld", label: "flannel", mem: flannelMem(fk)}
	groups := []*benchGroup{crib, flan}
	for range benchNodes {
		crib.nodes = append(crib.nodes, c.AddNode(ck))
	}
	for range benchNodes {
		flan.nodes = append(flan.nodes, c.AddNode(fk))
	}
	harness.Eventually(t, 180*time.Second, "every node Ready", func() (bool, string) {
		c.checkRunning(t)
		all := true
		var seen []string
		for _, n := range c.Nodes {
			r := nodeReady(t, c, n.Name)
			all = all && r == "True"
			seen = append(seen, n.Name+"="+r)
		}
		return all, strings.Join(seen, " ")
	})
	for _, g := range groups {
		for _, n := range g.nodes {
			c.kubectl(t, "label", "node", n.Name, benchKindLabel+"="+g.label)
		}
	}
	c.kubectl(t, "create", "namespace", testNS)
	harness.Eventually(t, 30*time.Second, "service account "+testNS+"/default", func() (bool, string) {
		out, err := c.kubectlRaw(context.Background(), "-n", testNS, "get", "serviceaccount", "default", "-o", "name")
		return err == nil, out
	})
	// Every node has the images before the first round: a round times
	// pod start, not a pull. containerd's sandbox image too (crib's pause
	// is a binary of its own).
	for _, n := range c.Nodes {
		imgs := []string{busybox}
		if n.Kind == fk {
			imgs = append(imgs, "registry.k8s.io/pause:3.9")
		}
		for _, img := range imgs {
			if _, e, err := crictl(n.Socket, "pull", img); err != nil {
				t.Fatalf("%s: crictl pull %s: %v: %s", n.Name, img, err, e)
			}
		}
	}
	t.Logf("cluster of %d nodes up in %s", len(c.Nodes), time.Since(start).Round(time.Millisecond))

	rounds := benchRounds(t)
	for r := 0; r <= rounds; r++ { // round 0 is the warm-up
		order := groups
		if r%2 == 1 {
			order = []*benchGroup{groups[1], groups[0]}
		}
		for _, g := range order {
			load := loadavg()
			took, mems := c.benchRound(t, g)
			t.Logf("round %d, %s: 30 pods Ready in %s (load %s); PSS KiB per node %+v", r, g.title, took.Round(time.Millisecond), load, mems)
			load, _, _ = strings.Cut(load, " ") // the report keeps the 1-minute average
			if r == 0 {
				g.warmup = took
				continue
			}
			g.ready = append(g.ready, took)
			g.loads = append(g.loads, load)
			g.mems = append(g.mems, mems...)
		}
	}

	loadStreams := loadavg()
	c.measureStreams(t, groups)
	report := benchClusterReport(groups, rounds, loadStart, loadStreams, loadavg())
	if err := harness.BenchReport(report); err != nil {
		t.Error(err)
	}
}

// loadavg is /proc/loadavg's three averages.
func loadavg() string {
	f := strings.Fields(harness.ReadFile("/proc/loadavg"))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchDeployment is the timed workload: busybox sleeping, pinned to one
// kind's nodes, 10 per node (maxSkew 1 over 3 nodes). No probe: a pod is
// Ready when kubelet sees its container running.
const benchDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: bench-%[1]s, namespace: crib-test}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: bench-%[1]s}}
  template:
    metadata: {labels: {app: bench-%[1]s}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {` + benchKindLabel + `: %[1]s}
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {app: bench-%[1]s}}
      containers:
      - name: sleep
        image: ` + busybox + `
        command: [sleep, "86400"]
`

// benchRound applies the Deployment to g's nodes, times it to all Ready,
// reads each node's memory once the pods have run benchSettle, then
// deletes it and waits until the pods and their sandboxes are gone.
func (c *Cluster) benchRound(t *testing.T, g *benchGroup) (time.Duration, []memSample) {
	t.Helper()
	name := "bench-" + g.label
	begin := time.Now()
	c.apply(t, fmt.Sprintf(benchDeployment, g.label, benchReplicas))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	out, err := c.kubectlCmd(ctx, "-n", testNS, "rollout", "status", "deployment/"+name, "--timeout", "10m").CombinedOutput()
	cancel()
	took := time.Since(begin)
	if err != nil {
		c.checkRunning(t)
		t.Fatalf("kubectl rollout status deployment/%s: %v: %s", name, err, out)
	}
	pods := c.pods(t, "app="+name)
	per := map[string]int{}
	for _, p := range pods {
		if !p.Ready() {
			t.Fatalf("rollout status returned with pod %s not Ready", p.Metadata.Name)
		}
		per[p.Spec.NodeName]++
	}
	if len(pods) != benchReplicas {
		t.Fatalf("%d pods of %s, want %d", len(pods), name, benchReplicas)
	}
	for _, n := range g.nodes {
		if per[n.Name] != benchReplicas/benchNodes {
			t.Fatalf("node %s runs %d pods of %s, want %d (spread %v)", n.Name, per[n.Name], name, benchReplicas/benchNodes, per)
		}
	}
	time.Sleep(benchSettle)
	var mems []memSample
	for _, n := range g.nodes {
		m := g.mem(n)
		if m.nShims != benchReplicas/benchNodes {
			// One shim per pod on both kinds: another count means the
			// sample did not find them (or found a stale one).
			t.Errorf("node %s: %d shims found, want %d", n.Name, m.nShims, benchReplicas/benchNodes)
		}
		mems = append(mems, m)
	}

	c.kubectl(t, "-n", testNS, "delete", "deployment", name, "--wait=false")
	harness.Eventually(t, 5*time.Minute, name+"'s pods gone", func() (bool, string) {
		c.checkRunning(t)
		left := c.pods(t, "app="+name)
		return len(left) == 0, fmt.Sprintf("%d pods left", len(left))
	})
	// kubelet removes stopped sandboxes only at its next garbage
	// collection; remove them now, so that each round starts on an
	// empty runtime and a stopped pod's shim is not counted in the next.
	for _, n := range g.nodes {
		harness.Eventually(t, 2*time.Minute, n.Name+": no sandbox left", func() (bool, string) {
			o, e, err := crictl(n.Socket, "pods", "-q")
			if err != nil {
				return false, e
			}
			ids := strings.Fields(o)
			for _, id := range ids {
				// Kubelet's own garbage collection may remove it first.
				_, _, _ = crictl(n.Socket, "rmp", "-f", id)
			}
			return len(ids) == 0, strings.Join(ids, " ")
		})
	}
	return took, mems
}

// cribMem: cribd (the overlay is part of it) and the shims its pods'
// shim.pid files name.
func cribMem(k *cribKind) func(*Node) memSample {
	return func(n *Node) memSample {
		m := memSample{daemon: pssKiB(k.proc[n].PID())}
		files, _ := filepath.Glob(filepath.Join(n.Dir, "cribd", "run", "pods", "*", "shim.pid"))
		for _, f := range files {
			pid, err := strconv.Atoi(strings.TrimSpace(harness.ReadFile(f)))
			if err != nil || exeName(pid) != "crib-shim" {
				continue
			}
			m.shims += pssKiB(pid)
			m.nShims++
		}
		return m
	}
}

// flannelMem: containerd, flanneld (the overlay agent), and every
// containerd-shim-runc-v2 whose command line names the node's containerd
// socket.
func flannelMem(k *flannelKind) func(*Node) memSample {
	return func(n *Node) memSample {
		m := memSample{daemon: pssKiB(k.ctrd[n].PID()), agent: pssKiB(k.flannel[n].PID())}
		for _, pid := range processesUnder(n.Dir) {
			if exeName(pid) == "containerd-shim-runc-v2" && strings.Contains(cmdline(pid), n.Socket) {
				m.shims += pssKiB(pid)
				m.nShims++
			}
		}
		return m
	}
}

// exeName is the base name of the process's executable, "" if it is gone.
func exeName(pid int) string {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return filepath.Base(exe)
}

// pssKiB is the process's proportional set size (smaps_rollup), 0 if it
// is gone.
func pssKiB(pid int) int {
	for _, line := range strings.Split(harness.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// tcpstreamPod runs tcpstream from the host directory mounted at /bench:
// a server (with a readiness probe on its port) or an idle client.
const tcpstreamPod = `apiVersion: v1
kind: Pod
metadata: {name: %[1]s, namespace: crib-test, labels: {app: tcpstream}}
spec:
  nodeName: %[2]s
  terminationGracePeriodSeconds: 1
  volumes:
  - name: bench
    hostPath: {path: %[3]s, type: Directory}
  containers:
  - name: tcpstream
    image: ` + busybox + `
    command: %[4]s
    volumeMounts: [{name: bench, mountPath: /bench, readOnly: true}]
%[5]s`

const tcpstreamProbe = `    readinessProbe:
      tcpSocket: {port: 5201}
      periodSeconds: 1
`

// measureStreams measures one TCP stream between each kind's first two
// nodes, pod to pod over the overlay and node to node on the underlay,
// benchStreams runs of each, alternating.
func (c *Cluster) measureStreams(t *testing.T, groups []*benchGroup) {
	t.Helper()
	dir := filepath.Join(c.Dir, "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tcpstream")
	build := exec.Command(goTool(), "build", "-o", bin, "./testdata/tcpstream")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build tcpstream: %v: %s", err, out)
	}
	type path struct {
		g       *benchGroup
		overlay bool
		run     func() string // the sender's output
	}
	var paths []path
	for _, g := range groups {
		a, b := g.nodes[0], g.nodes[1]
		srv, cli := "stream-srv-"+g.label, "stream-cli-"+g.label
		c.apply(t, fmt.Sprintf(tcpstreamPod, srv, a.Name, dir, `[/bench/tcpstream, -listen, ":5201"]`, tcpstreamProbe))
		c.apply(t, fmt.Sprintf(tcpstreamPod, cli, b.Name, dir, `[sleep, "86400"]`, ""))
		// The underlay server, in node a's network namespace.
		args := a.in(bin, "-listen", a.IP+":5202")
		p := harness.StartProcess(t, a.Name+" tcpstream", exec.Command(args[0], args[1:]...), filepath.Join(dir, a.Name+"-tcpstream.log"))
		t.Cleanup(func() { p.Signal(syscall.SIGKILL, 10*time.Second) })
		harness.Eventually(t, 10*time.Second, a.Name+" tcpstream listening", func() (bool, string) {
			s := harness.ReadFile(p.LogPath)
			return strings.Contains(s, "listening on"), s
		})
		paths = append(paths,
			path{g: g, overlay: true, run: func() string {
				ip := c.podIP(t, srv)
				return c.kubectl(t, "-n", testNS, "exec", cli, "--", "/bench/tcpstream", "-connect", ip+":5201", "-duration", benchStreamFor.String())
			}},
			path{g: g, run: func() string {
				args := b.in(bin, "-connect", a.IP+":5202", "-duration", benchStreamFor.String())
				out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
				if err != nil {
					t.Fatalf("tcpstream %s → %s on the underlay: %v: %s", b.Name, a.Name, err, out)
				}
				return string(out)
			}})
	}
	c.waitPodsReady(t, "app=tcpstream", 2*len(groups), 3*time.Minute)
	for _, g := range groups {
		g.podMTU = strings.TrimSpace(c.kubectl(t, "-n", testNS, "exec", "stream-cli-"+g.label, "--", "cat", "/sys/class/net/eth0/mtu"))
		// Not /sys through nsenter: the host's sysfs shows the host's
		// eth0, whatever the namespace.
		g.nodeMTU = linkMTU(run(t, "ip", "-n", g.nodes[1].NS, "-o", "link", "show", "eth0"))
	}
	for i := range benchStreams {
		for _, p := range paths {
			out := p.run()
			mbps, err := parseMBps(out)
			if err != nil {
				t.Fatalf("tcpstream: %v: %q", err, out)
			}
			where := "underlay"
			if p.overlay {
				where = "overlay"
				p.g.overlay = append(p.g.overlay, mbps)
			} else {
				p.g.underlay = append(p.g.underlay, mbps)
			}
			t.Logf("stream %d, %s %s: %.0f MB/s", i, p.g.title, where, mbps)
		}
	}
	c.kubectl(t, "-n", testNS, "delete", "pods", "-l", "app=tcpstream", "--wait=false")
}

// linkMTU reads the mtu out of `ip -o link show`'s line, "?" if none.
func linkMTU(line string) string {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "mtu" {
			return f[i+1]
		}
	}
	return "?"
}

// goTool is the go command: the one on PATH, else the running toolchain's.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// podIP is the test namespace's pod's IP.
func (c *Cluster) podIP(t *testing.T, name string) string {
	t.Helper()
	ip := strings.TrimSpace(c.kubectl(t, "-n", testNS, "get", "pod", name, "-o", "jsonpath={.status.podIP}"))
	if ip == "" {
		t.Fatalf("pod %s has no IP", name)
	}
	return ip
}

// parseMBps reads tcpstream's "… MBps=R" line.
func parseMBps(out string) (float64, error) {
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "MBps="); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no MBps= in the output")
}

// medianF is the median of xs (the mean of the middle two for an even
// count); 0 for none.
func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// memMedian is the median over samples of one component, MiB.
func memMedian(ms []memSample, f func(memSample) int) float64 {
	xs := make([]float64, len(ms))
	for i, m := range ms {
		xs[i] = float64(f(m)) / 1024
	}
	return medianF(xs)
}

func secs(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%.1f", d.Seconds()))
	}
	return strings.Join(s, ", ") + " s"
}

func mbs(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(s, ", ")
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// benchClusterReport is the printed report: crib, containerd+flanneld,
// and their ratio, per measure.
func benchClusterReport(groups []*benchGroup, rounds int, loadStart, loadStreams, loadEnd string) string {
	cr, fl := groups[0], groups[1]
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "\nTestBenchCluster (%s, %d CPUs, %s): 3 crib nodes and 3 containerd 2.4.2 + flanneld %s nodes in one cluster (Kubernetes %s)\n",
		host, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), flannelVersion, kubeVersion)
	fmt.Fprintf(&b, "load average: at start %s; at the throughput runs %s; at the end %s\n", loadStart, loadStreams, loadEnd)
	fmt.Fprintf(&b, "%-58s %22s %22s %8s\n", "", cr.title, fl.title, "ratio")
	row := func(what, a, f, r string) { fmt.Fprintf(&b, "%-58s %22s %22s %8s\n", what, a, f, r) }
	cp, fp := harness.Percentile(cr.ready, 50), harness.Percentile(fl.ready, 50)
	row(fmt.Sprintf("apply → %d pods Ready, p50 of %d rounds", benchReplicas, rounds),
		fmt.Sprintf("%.2f s", cp.Seconds()), fmt.Sprintf("%.2f s", fp.Seconds()), ratio(cp.Seconds(), fp.Seconds()))
	fmt.Fprintf(&b, "  each round: %s %s; %s %s (warm-up: %.1f / %.1f s)\n", cr.title, secs(cr.ready), fl.title, secs(fl.ready), cr.warmup.Seconds(), fl.warmup.Seconds())
	fmt.Fprintf(&b, "  1-minute load average at each round's start: %s %s; %s %s\n", cr.title, strings.Join(cr.loads, ", "), fl.title, strings.Join(fl.loads, ", "))
	n := benchReplicas / benchNodes
	mrow := func(what string, f func(memSample) int) {
		a, c := memMedian(cr.mems, f), memMedian(fl.mems, f)
		row(what, fmt.Sprintf("%.1f MiB", a), fmt.Sprintf("%.1f MiB", c), ratio(a, c))
	}
	fmt.Fprintf(&b, "PSS per node with %d pods, median of %d samples (rounds × nodes):\n", n, len(cr.mems))
	mrow("  runtime total (daemon + overlay agent + shims)", memSample.total)
	mrow("  daemon: cribd (overlay inside) / containerd", func(m memSample) int { return m.daemon })
	mrow("  overlay agent: (in cribd) / flanneld", func(m memSample) int { return m.agent })
	mrow(fmt.Sprintf("  shims, all %d", n), func(m memSample) int { return m.shims })
	co, fo := medianF(cr.overlay), medianF(fl.overlay)
	cu, fu := medianF(cr.underlay), medianF(fl.underlay)
	fmt.Fprintf(&b, "TCP, one stream, %s, median of %d runs (MB/s):\n", benchStreamFor, benchStreams)
	row("  pod → pod on another node (overlay)", fmt.Sprintf("%.0f", co), fmt.Sprintf("%.0f", fo), ratio(co, fo))
	row("  node → node (underlay, same two nodes)", fmt.Sprintf("%.0f", cu), fmt.Sprintf("%.0f", fu), ratio(cu, fu))
	row("  overlay / underlay", ratio(co, cu), ratio(fo, fu), "")
	fmt.Fprintf(&b, "  MTU, pod / node: %s %s / %s; %s %s / %s\n", cr.title, cr.podMTU, cr.nodeMTU, fl.title, fl.podMTU, fl.nodeMTU)
	fmt.Fprintf(&b, "  runs: %s overlay %s, underlay %s; %s overlay %s, underlay %s\n", cr.title, mbs(cr.overlay), mbs(cr.underlay), fl.title, mbs(fl.overlay), mbs(fl.underlay))
	return b.String()
}
