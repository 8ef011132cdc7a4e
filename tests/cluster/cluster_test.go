//go:build cluster

package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// busybox is the test image every scenario's pods run (tests/images: a
// Debian busybox with httpd, ping, nc).
const busybox = "docker.io/library/busybox:latest"

// httpGet is a shell function for the pods' scripts: `get IP PORT` prints
// the body of GET / (one line here). busybox's wget segfaults in the test
// image (exit 139, also against 127.0.0.1), so nc speaks HTTP/1.0.
const httpGet = `get() { printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 "$1" "$2" | tail -n 1; }
`

// scenario is one step of TestCluster. They run in order on one cluster;
// each may rely on what the ones before it created (st).
type scenario struct {
	name string
	run  func(t *testing.T, c *Cluster, st *state)
}

// state is what scenarios hand to the ones after them.
type state struct {
	web []Pod // the spread Deployment's pods, Ready
}

var scenarios = []scenario{
	{"NodesReady", testNodesReady},
	{"DeploymentSpread", testDeploymentSpread},
	{"PodToPodAcrossNodes", testPodToPod},
	{"GarbageNodeSkipped", testGarbageNode},
	{"ClusterIPFromNodeWithoutBackend", testClusterIP},
	{"ClusterDNS", testClusterDNS},
	{"KubectlExec", testKubectlExec},
	{"KubectlExecTTY", testKubectlExecTTY},
	{"KubectlLogsFollow", testKubectlLogsFollow},
	{"KubectlAttach", testKubectlAttach},
	{"KubectlPortForward", testKubectlPortForward},
	{"RuntimeClass", testRuntimeClass},
	{"CribdKilledUnderTraffic", testCribdKilled},
	{"DrainMovesPods", testDrain},
	{"NodeDeleted", testNodeDeleted}, // the cluster loses its last node
	{"NodeJoins", testNodeJoins},
	{"FlannelNode", testFlannelNode},
}

// TestCluster starts the control plane and three crib nodes, then runs
// the scenarios in order; the first that fails ends the test (the later
// ones build on it). Cleanup removes everything and checks for leaks.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := newCluster(t)
	crib := newCribKind()
	for range 3 {
		c.AddNode(crib)
	}
	t.Logf("cluster of %d nodes up in %s", len(c.Nodes), time.Since(start).Round(time.Millisecond))
	c.kubectl(t, "create", "namespace", testNS)
	// Pods run under the namespace's default service account, which the
	// controller-manager creates shortly after the namespace.
	harness.Eventually(t, 30*time.Second, "service account "+testNS+"/default", func() (bool, string) {
		out, err := c.kubectlRaw(context.Background(), "-n", testNS, "get", "serviceaccount", "default", "-o", "name")
		return err == nil, out
	})
	st := &state{}
	for _, s := range scenarios {
		begin := time.Now()
		ok := t.Run(s.name, func(st2 *testing.T) {
			// The cluster's helpers fail the test they are called from:
			// the scenario's while it runs.
			c.t, c.PKI.t = st2, st2
			defer func() { c.t, c.PKI.t = t, t }()
			s.run(st2, c, st)
		})
		t.Logf("%s: %s", s.name, time.Since(begin).Round(time.Millisecond))
		if !ok {
			return
		}
	}
}

// node is the Node object fields NodesReady reads.
type node struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR string `json:"podCIDR"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type    string `json:"type"`
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"conditions"`
	} `json:"status"`
}

// testNodesReady: every node Ready, with a distinct /24 of the cluster
// network the controller-manager allocated, and the node's runtime
// overlay serving that subnet (its subnet file, which crib-vxlan reads).
func testNodesReady(t *testing.T, c *Cluster, _ *state) {
	_, cluster, _ := net.ParseCIDR(clusterCIDR)
	var nodes []node
	harness.Eventually(t, 120*time.Second, "every node Ready with a pod CIDR", func() (bool, string) {
		c.checkRunning(t)
		var list struct{ Items []node }
		if err := json.Unmarshal([]byte(c.kubectl(t, "get", "nodes", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		nodes = list.Items
		var seen []string
		ready := 0
		for _, n := range nodes {
			for _, cond := range n.Status.Conditions {
				if cond.Type == "Ready" {
					seen = append(seen, fmt.Sprintf("%s cidr=%q Ready=%s (%s)", n.Metadata.Name, n.Spec.PodCIDR, cond.Status, cond.Message))
					if cond.Status == "True" && n.Spec.PodCIDR != "" {
						ready++
					}
				}
			}
		}
		return len(nodes) == len(c.Nodes) && ready == len(c.Nodes), strings.Join(seen, "; ")
	})
	cidrs := map[string]string{}
	for _, n := range nodes {
		ip, sn, err := net.ParseCIDR(n.Spec.PodCIDR)
		if err != nil || !cluster.Contains(ip) {
			t.Errorf("node %s: pod CIDR %q is not inside %s", n.Metadata.Name, n.Spec.PodCIDR, clusterCIDR)
			continue
		}
		if ones, _ := sn.Mask.Size(); ones != 24 {
			t.Errorf("node %s: pod CIDR %s is not a /24", n.Metadata.Name, n.Spec.PodCIDR)
		}
		if other, dup := cidrs[n.Spec.PodCIDR]; dup {
			t.Errorf("nodes %s and %s share pod CIDR %s", other, n.Metadata.Name, n.Spec.PodCIDR)
		}
		cidrs[n.Spec.PodCIDR] = n.Metadata.Name
		for _, cn := range c.Nodes {
			if cn.Name != n.Metadata.Name {
				continue
			}
			// The overlay writes the node's subnet with the gateway
			// (.1) for crib-vxlan, as flannel's subnet.env does.
			env := harness.ReadFile(filepath.Join(cn.Dir, "cribd", "subnet.env"))
			gw := strings.TrimSuffix(n.Spec.PodCIDR, "0/24") + "1/24"
			if !strings.Contains(env, gw) && !strings.Contains(env, n.Spec.PodCIDR) {
				t.Errorf("node %s: pod CIDR %s, but its overlay's subnet file says:\n%s", n.Metadata.Name, n.Spec.PodCIDR, env)
			}
		}
	}
}

// webDeployment is 6 busybox httpd replicas answering their pod name on
// 8080, spread one skew at most per node (so exactly 2 on each of 3). A
// cordoned node is no spread domain (nodeTaintsPolicy: Honor), so that a
// drain moves its pods to the others instead of leaving them Pending.
const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: crib-test}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        nodeTaintsPolicy: Honor
        labelSelector: {matchLabels: {app: web}}
      containers:
      - name: httpd
        image: ` + busybox + `
        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
`

// testDeploymentSpread: the scheduler places the 6 replicas 2 per node,
// and each pod has an address of its node's pod CIDR.
func testDeploymentSpread(t *testing.T, c *Cluster, st *state) {
	c.apply(t, webDeployment)
	pods := c.waitPodsReady(t, "app=web", 6, 180*time.Second)
	per := map[string]int{}
	cidr := map[string]*net.IPNet{}
	for _, n := range c.Nodes {
		_, sn, err := net.ParseCIDR(strings.TrimSpace(c.kubectl(t, "get", "node", n.Name, "-o", "jsonpath={.spec.podCIDR}")))
		if err != nil {
			t.Fatal(err)
		}
		cidr[n.Name] = sn
	}
	for _, p := range pods {
		per[p.Spec.NodeName]++
		if sn := cidr[p.Spec.NodeName]; sn == nil || !sn.Contains(net.ParseIP(p.Status.PodIP)) {
			t.Errorf("pod %s on %s has IP %s, not in its node's pod CIDR %v", p.Metadata.Name, p.Spec.NodeName, p.Status.PodIP, sn)
		}
	}
	for _, n := range c.Nodes {
		if per[n.Name] != 2 {
			t.Errorf("node %s runs %d web pods, want 2 (spread: %v)", n.Name, per[n.Name], per)
		}
	}
	st.web = pods
}

// testPodToPod: every web pod pings every pod on another node and fetches
// its page over TCP; the page must name the target pod. A capture on the
// first node's underlay link must see the traffic as VXLAN, VNI 1, on UDP
// 8472, carrying pod addresses.
func testPodToPod(t *testing.T, c *Cluster, st *state) {
	if len(st.web) == 0 {
		t.Skip("no web pods")
	}
	cap := startCapture(t, c.Nodes[0], "udp port 8472")
	byIP := map[string]Pod{}
	for _, p := range st.web {
		byIP[p.Status.PodIP] = p
	}
	for _, from := range st.web {
		var targets []string
		for _, to := range st.web {
			if to.Spec.NodeName != from.Spec.NodeName {
				targets = append(targets, to.Status.PodIP)
			}
		}
		script := httpGet + `for ip in ` + strings.Join(targets, " ") + `; do
  if ping -c 1 -W 3 $ip >/dev/null 2>&1; then echo "ping $ip ok"; else echo "ping $ip FAIL"; fi
  echo "http $ip $(get $ip 8080 2>&1)"
done`
		out := c.kubectl(t, "-n", testNS, "exec", from.Metadata.Name, "--", "sh", "-c", script)
		for _, ip := range targets {
			want := byIP[ip]
			if !strings.Contains(out, "ping "+ip+" ok") {
				t.Errorf("%s (%s) → %s (%s on %s): no ping reply\n%s", from.Metadata.Name, from.Spec.NodeName, want.Metadata.Name, ip, want.Spec.NodeName, out)
			}
			if !strings.Contains(out, "http "+ip+" "+want.Metadata.Name+"\n") {
				t.Errorf("%s (%s) → %s (%s on %s): HTTP did not answer with the pod's name\n%s", from.Metadata.Name, from.Spec.NodeName, want.Metadata.Name, ip, want.Spec.NodeName, out)
			}
		}
	}
	// Pod addresses inside VXLAN VNI 1 on the underlay: what flannel
	// nodes expect to receive.
	inner := regexp.MustCompile(`VXLAN, flags \[I\] \(0x08\), vni 1\s+IP (10\.244\.\d+\.\d+)(\.\d+)? > (10\.244\.\d+\.\d+)`)
	harness.Eventually(t, 10*time.Second, "a VXLAN VNI 1 packet between pods captured on "+c.Nodes[0].Name+"'s eth0", func() (bool, string) {
		got := cap.output()
		m := inner.FindStringSubmatch(got)
		if m == nil {
			return false, harness.Tail(got, 20)
		}
		return byIP[m[1]].Metadata.Name != "" && byIP[m[3]].Metadata.Name != "", m[0]
	})
}

// capture is a tcpdump running in a node's namespace.
type capture struct {
	path string
	cmd  *exec.Cmd
}

// startCapture captures filter on the node's eth0, decoding UDP as VXLAN
// (8472 is flannel's port, not IANA's 4789, so tcpdump must be told).
func startCapture(t *testing.T, n *Node, filter string) *capture {
	t.Helper()
	cp := &capture{path: filepath.Join(n.Dir, fmt.Sprintf("capture-%s.txt", harness.RandomHex(2)))}
	f, err := os.Create(cp.path)
	if err != nil {
		t.Fatal(err)
	}
	args := n.in("tcpdump", "-i", "eth0", "-n", "-l", "-T", "vxlan", filter)
	cp.cmd = exec.Command(args[0], args[1:]...)
	cp.cmd.Stdout, cp.cmd.Stderr = f, f
	if err := cp.cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cp.cmd.Process.Kill()
		_ = cp.cmd.Wait()
		f.Close()
	})
	harness.Eventually(t, 10*time.Second, "tcpdump listening", func() (bool, string) {
		s := harness.ReadFile(cp.path)
		return strings.Contains(s, "listening on"), s
	})
	return cp
}

func (cp *capture) output() string { return harness.ReadFile(cp.path) }

// echoApp is one pod pinned to a node behind a ClusterIP Service.
const echoApp = `apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: crib-test, labels: {app: echo}}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: ` + busybox + `
    command: [sh, -c, 'mkdir -p /www && echo echo-on-%s > /www/index.html && exec httpd -f -p 8080 -h /www']
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: crib-test}
spec:
  selector: {app: echo}
  ports: [{port: 80, targetPort: 8080}]
`

// testClusterIP: a Service whose only backend runs on the first node
// answers a pod on the last node at its ClusterIP, through the last
// node's kube-proxy rules and the overlay.
func testClusterIP(t *testing.T, c *Cluster, st *state) {
	first, last := c.Nodes[0], c.Nodes[len(c.Nodes)-1]
	c.apply(t, fmt.Sprintf(echoApp, first.Name, first.Name))
	c.waitPodsReady(t, "app=echo", 1, 120*time.Second)
	ip := strings.TrimSpace(c.kubectl(t, "-n", testNS, "get", "service", "echo", "-o", "jsonpath={.spec.clusterIP}"))
	if _, svc, _ := net.ParseCIDR(serviceCIDR); !svc.Contains(net.ParseIP(ip)) {
		t.Fatalf("service echo has ClusterIP %q, not in %s", ip, serviceCIDR)
	}
	var client Pod
	for _, p := range st.web {
		if p.Spec.NodeName == last.Name {
			client = p
		}
	}
	if client.Metadata.Name == "" {
		t.Fatalf("no web pod on %s", last.Name)
	}
	want := "echo-on-" + first.Name
	// kube-proxy writes the rules once the endpoint is ready: poll.
	harness.Eventually(t, 30*time.Second, fmt.Sprintf("%s on %s fetches http://%s/", client.Metadata.Name, last.Name, ip), func() (bool, string) {
		out, _ := c.kubectlRaw(context.Background(), "-n", testNS, "exec", client.Metadata.Name, "--", "sh", "-c", httpGet+"get "+ip+" 80")
		return strings.TrimSpace(out) == want, out
	})
}

// testKubectlExec: exec without a TTY carries stdin, stdout, stderr and
// the exit code apart.
func testKubectlExec(t *testing.T, c *Cluster, st *state) {
	pod := st.web[0].Metadata.Name
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, "-n", testNS, "exec", "-i", pod, "--", "sh", "-c", `read l; echo "out:$l"; echo "err:$l" >&2; exit 7`)
	cmd.Stdin = strings.NewReader("from-stdin\n")
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("kubectl exec: err %v, want exit status 7", err)
	}
	if o.String() != "out:from-stdin\n" {
		t.Errorf("stdout %q, want %q", o.String(), "out:from-stdin\n")
	}
	if !strings.Contains(e.String(), "err:from-stdin\n") || strings.Contains(e.String(), "out:") {
		t.Errorf("stderr %q, want err:from-stdin and no stdout", e.String())
	}
}

// testKubectlExecTTY: exec -it on a terminal gives the shell a TTY; what
// is typed reaches it and its answer comes back.
func testKubectlExecTTY(t *testing.T, c *Cluster, st *state) {
	pod := st.web[0].Metadata.Name
	ptm, pts := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, "-n", testNS, "exec", "-it", pod, "--", "sh")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	out := &syncBuffer{}
	go func() { _, _ = io.Copy(out, ptm) }()
	// The sum proves the shell ran what was typed, not that the
	// terminal echoed it; tty names the shell's terminal.
	if _, err := io.WriteString(ptm, "echo sum-$((40+2)); tty\r"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "the shell answers through the TTY", func() (bool, string) {
		s := out.String()
		return strings.Contains(s, "sum-42") && strings.Contains(s, "/dev/pts/"), s
	})
	_, _ = io.WriteString(ptm, "exit 0\r")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("kubectl exec -it: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("kubectl exec -it did not exit after the shell's exit\n%s", out.String())
	}
	ptm.Close()
}

// loggerPod prints a numbered line every 200 ms; readerPod echoes its
// stdin, for attach.
const loggerPod = `apiVersion: v1
kind: Pod
metadata: {name: logger, namespace: crib-test, labels: {app: stream}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: logger
    image: ` + busybox + `
    command: [sh, -c, 'i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.2; done']
---
apiVersion: v1
kind: Pod
metadata: {name: reader, namespace: crib-test, labels: {app: stream}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: reader
    image: ` + busybox + `
    stdin: true
    command: [sh, -c, 'echo reader-started; while read l; do echo "got:$l"; done']
`

// testKubectlLogsFollow: logs -f keeps streaming lines written after it
// started.
func testKubectlLogsFollow(t *testing.T, c *Cluster, _ *state) {
	c.apply(t, loggerPod)
	c.waitPodsReady(t, "app=stream", 2, 120*time.Second) // logger, reader
	// The last line written before following starts.
	var last int
	harness.Eventually(t, 10*time.Second, "logger has written", func() (bool, string) {
		out, _ := c.kubectlRaw(context.Background(), "-n", testNS, "logs", "logger", "--tail", "1")
		_, err := fmt.Sscanf(strings.TrimSpace(out), "line-%d", &last)
		return err == nil, out
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, "-n", testNS, "logs", "-f", "logger")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	want := fmt.Sprintf("line-%d", last+10) // about 2 s after following started
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == want {
			return
		}
	}
	t.Errorf("kubectl logs -f ended (%v) before %s", ctx.Err(), want)
}

// testKubectlAttach: attach -i reaches the running container's stdin and
// its stdout.
func testKubectlAttach(t *testing.T, c *Cluster, _ *state) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, "-n", testNS, "attach", "-i", "reader")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	// Until attach is connected, what is written is kubectl's to buffer;
	// write a new line each round so that one arrives once it is.
	harness.Eventually(t, 20*time.Second, "the attached container echoes its stdin", func() (bool, string) {
		_, _ = io.WriteString(stdin, "attached-hello\n")
		time.Sleep(200 * time.Millisecond)
		return strings.Contains(out.String(), "got:attached-hello"), out.String()
	})
}

// testKubectlPortForward: port-forward relays a local port to a pod's
// port, API server → kubelet → cribd's streaming server → pod netns.
func testKubectlPortForward(t *testing.T, c *Cluster, st *state) {
	pod := st.web[len(st.web)-1].Metadata.Name
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.kubectlCmd(ctx, "-n", testNS, "port-forward", "pod/"+pod, "--address", "127.0.0.1", ":8080")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
	var port string
	harness.Eventually(t, 20*time.Second, "port-forward listening", func() (bool, string) {
		m := re.FindStringSubmatch(out.String())
		if m != nil {
			port = m[1]
		}
		return m != nil, out.String()
	})
	for i := range 3 { // a few connections, each a new stream
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err != nil {
			t.Fatalf("GET %d through port-forward: %v\n%s", i, err, out.String())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(b)) != pod {
			t.Errorf("GET %d through port-forward: %q, want the pod's name %q", i, b, pod)
		}
	}
}
