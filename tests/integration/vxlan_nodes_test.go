//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/tests/harness"
)

// vxCluster is several "nodes" on one machine for the VXLAN overlay tests:
// an underlay namespace holding a test bridge, and one namespace per node
// joined to it by a veth, with eth0 = 192.168.50.(10+i)/24, running its own
// cribd. Every address the tests send to lies inside these namespaces.
// Nothing is made in the host's network namespace.
type vxCluster struct {
	t        *testing.T
	id       string
	dir      string // /tmp/cvx-<id>
	underNS  string
	leaseDir string
	nodes    []*vxNode
	// extra is appended to every node's [network.overlay] section added
	// after it is set (e.g. the Kubernetes peer source's keys).
	extra string
}

// vxNode is one node: its namespace, directories and cribd.
type vxNode struct {
	c        *vxCluster
	i        int
	name     string // node<i>, the lease name
	ns       string // ip netns name
	ip       string // underlay address
	dir      string
	socket   string
	netnsDir string
	cgroup   string
	logPath  string
	proc     *harness.Process
}

// run runs a command and fails the test if it fails; it returns the output.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newVXCluster builds n nodes; subnets[i] is node i+1's configured subnet,
// "" to leave it to UpdateRuntimeConfig.
func newVXCluster(t *testing.T, subnets ...string) *vxCluster {
	t.Helper()
	id := randomHex(3)
	c := &vxCluster{t: t, id: id, dir: "/tmp/cvx-" + id, underNS: "cvxu-" + id}
	c.leaseDir = filepath.Join(c.dir, "leases")
	if err := os.MkdirAll(c.leaseDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	run(t, "ip", "netns", "add", c.underNS)
	run(t, "ip", "-n", c.underNS, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", c.underNS, "link", "set", "br0", "up")
	for i := range subnets {
		c.addNode(i+1, subnets[i])
	}
	return c
}

func (c *vxCluster) addNode(i int, subnet string) {
	t := c.t
	n := &vxNode{c: c, i: i, name: fmt.Sprintf("node%d", i), ns: fmt.Sprintf("cvxn%d-%s", i, c.id),
		ip: fmt.Sprintf("192.168.50.%d", 10+i), dir: filepath.Join(c.dir, fmt.Sprintf("n%d", i))}
	n.socket = filepath.Join(n.dir, "crib.sock")
	n.netnsDir = filepath.Join(n.dir, "netns")
	n.cgroup = fmt.Sprintf("/crib-vx-%s-n%d", c.id, i)
	n.logPath = filepath.Join(n.dir, "cribd.log")
	c.nodes = append(c.nodes, n)
	run(t, "ip", "netns", "add", n.ns)
	port := fmt.Sprintf("u%d", i)
	run(t, "ip", "-n", c.underNS, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
	run(t, "ip", "-n", c.underNS, "link", "set", port, "master", "br0", "up")
	run(t, "ip", "-n", n.ns, "addr", "add", n.ip+"/24", "dev", "eth0")
	run(t, "ip", "-n", n.ns, "link", "set", "eth0", "up")
	run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sub := ""
	if subnet != "" {
		sub = fmt.Sprintf("node_subnet = %q\n", subnet)
	}
	cfg := fmt.Sprintf(`root_dir = %q
run_dir = %q

[grpc]
socket = %q

[runtime]
cgroup_parent = %q
netns_dir = %q

[network]
conf_dir = %q
bin_dirs = [%q, %q]
cache_dir = %q

[network.overlay]
enabled = true
interface = "eth0"
node_name = %q
lease_dir = %q
subnet_file = %q
ipam_data_dir = %q
%s`, filepath.Join(n.dir, "root"), filepath.Join(n.dir, "run"), n.socket, n.cgroup, n.netnsDir,
		filepath.Join(n.dir, "net.d"), binDir(), stdCNIDir, filepath.Join(n.dir, "cni-cache"),
		n.name, c.leaseDir, filepath.Join(n.dir, "subnet.env"), filepath.Join(n.dir, "ipam"), sub+c.extra)
	if err := os.WriteFile(filepath.Join(n.dir, "crib.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start()
}

// start runs cribd in the node's network namespace and in a mount
// namespace of its own (a slave of the host's: it sees the host's mounts,
// the host does not see its). Its netns pins, /dev/shm mounts and its
// shims' mounts stay out of the host's mount table, where the leak cleanup
// of a harness test running at the same time on the machine would take
// every new crib-* mount for its own and unmount it. The test reaches the
// pins through the node's mount namespace (inPod) and the node's files
// (socket, leases, subnet file) on the shared filesystem.
func (n *vxNode) start() {
	t := n.c.t
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", "--",
		"nsenter", "--net=/var/run/netns/"+n.ns, "--",
		filepath.Join(binDir(), "cribd"), "--config", filepath.Join(n.dir, "crib.toml"), "--log-level", "debug")
	n.proc = harness.StartProcess(t, n.name+" cribd", cmd, n.logPath)
	n.proc.WaitReady(t, 20*time.Second, n.name+" cribd answers", func() (bool, string) {
		_, e, err := n.crictlRaw("version")
		return err == nil, e
	})
}

func (n *vxNode) log() string { b, _ := os.ReadFile(n.logPath); return string(b) }

// stop asks cribd to exit (failing the test if it has not after 15 s,
// then killing it).
func (n *vxNode) stop() {
	if n.proc == nil || !n.proc.Running() {
		return
	}
	n.proc.Stop(n.c.t, 15*time.Second)
}

func (n *vxNode) crictlRaw(args ...string) (string, string, error) {
	full := append([]string{"--runtime-endpoint", "unix://" + n.socket, "--image-endpoint", "unix://" + n.socket, "--timeout", "30s"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, crictlPath(), full...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

// runPod starts a pod and returns its ID and IP.
func (n *vxNode) runPod(name string) (string, string) {
	t := n.c.t
	t.Helper()
	f := filepath.Join(n.dir, "pod-"+randomHex(3)+".json")
	cfg := podConfig(name)
	b := fmt.Sprintf(`{"metadata":{"name":%q,"uid":%q,"namespace":"crib-vx","attempt":0},"linux":{}}`,
		cfg["metadata"].(map[string]any)["name"], cfg["metadata"].(map[string]any)["uid"])
	if err := os.WriteFile(f, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	out, e, err := n.crictlRaw("runp", f)
	if err != nil {
		t.Fatalf("%s: crictl runp: %v: %s\n%s", n.name, err, e, tail(n.log(), 30))
	}
	id := strings.TrimSpace(out)
	out, e, err = n.crictlRaw("inspectp", "-o", "go-template", "--template", "{{.status.network.ip}}", id)
	if err != nil {
		t.Fatalf("%s: crictl inspectp: %v: %s", n.name, err, e)
	}
	return id, strings.TrimSpace(out)
}

// inPod returns cmd prefixed to run in the pod's network namespace. The
// pin is a mount in cribd's mount namespace: the first nsenter enters that,
// the second opens the pin there.
func (n *vxNode) inPod(id string, cmd ...string) []string {
	return append([]string{"nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", n.proc.PID()), "--",
		"nsenter", "--net=" + filepath.Join(n.netnsDir, "crib-"+id), "--"}, cmd...)
}

// inNode returns cmd prefixed to run in the node's network namespace.
func (n *vxNode) inNode(cmd ...string) []string {
	return append([]string{"ip", "netns", "exec", n.ns}, cmd...)
}

// status calls the CRI Status RPC and returns NetworkReady.
func (n *vxNode) cri(t *testing.T) runtimeapi.RuntimeServiceClient {
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

func networkReady(t *testing.T, rs runtimeapi.RuntimeServiceClient) (bool, string) {
	resp, err := rs.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, c := range resp.GetStatus().GetConditions() {
		if c.Type == runtimeapi.NetworkReady {
			return c.Status, c.Reason + ": " + c.Message
		}
	}
	return false, "no NetworkReady condition"
}

// cleanup removes the pods, stops every cribd, deletes the namespaces,
// cgroups, mounts and the directory.
func (c *vxCluster) cleanup() {
	t := c.t
	for _, n := range c.nodes {
		if n.proc != nil && n.proc.Running() {
			if out, _, err := n.crictlRaw("pods", "-q"); err == nil {
				for _, id := range strings.Fields(out) {
					n.crictlRaw("stopp", id)
					n.crictlRaw("rmp", "-f", id)
				}
			}
			n.stop()
		}
		if t.Failed() {
			t.Logf("%s cribd log (last 60 lines):\n%s", n.name, tail(n.log(), 60))
		}
		exec.Command("ip", "netns", "delete", n.ns).Run()
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", n.cgroup))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, p := range append(dirs, filepath.Join("/sys/fs/cgroup", n.cgroup)) {
			if err := cgroup.RemoveTree(ctx, p); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
		cancel()
	}
	exec.Command("ip", "netns", "delete", c.underNS).Run()
	unmountUnder(c.dir)
	if err := os.RemoveAll(c.dir); err != nil {
		t.Logf("cleanup: %v", err)
	}
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mps = append(mps, fields[4])
		}
	}
	f.Close()
	for i := len(mps) - 1; i >= 0; i-- {
		_ = unix.Unmount(mps[i], unix.MNT_DETACH)
	}
}
