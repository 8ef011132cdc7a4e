//go:build cluster

package cluster

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// flannelVersion is the flanneld the flannel node runs
// (scripts/build-flannel.sh builds it into the tool cache).
const flannelVersion = "v0.28.10"

// flanneldPath is flanneld: $FLANNELD, or the tool cache's.
func flanneldPath() string {
	if p := os.Getenv("FLANNELD"); p != "" {
		return p
	}
	return filepath.Join(harness.ToolsDir(), "flannel-"+flannelVersion, "flanneld")
}

// flannelKind is a node as flannel's users run it: kubelet on containerd
// 2.4.2 (scripts/build-containerd.sh) with runc, flanneld with the kube
// subnet manager and the vxlan backend as the overlay, and a bridge CNI
// config on the subnet flanneld writes. It is the reference crib's overlay
// must interoperate with.
type flannelKind struct {
	ctrd    map[*Node]*harness.Process
	flannel map[*Node]*harness.Process
}

func newFlannelKind() *flannelKind {
	return &flannelKind{ctrd: map[*Node]*harness.Process{}, flannel: map[*Node]*harness.Process{}}
}

func (k *flannelKind) Name() string { return "flannel" }

// missing says which binary the kind lacks, "" when it has them all.
func (k *flannelKind) missing() string {
	for _, p := range []string{flanneldPath(), filepath.Join(harness.ContainerdBinDir(), "containerd"),
		filepath.Join(harness.ContainerdBinDir(), "containerd-shim-runc-v2"), filepath.Join(harness.ContainerdBinDir(), "runc")} {
		if _, err := os.Stat(p); err != nil {
			return p
		}
	}
	return ""
}

// Start starts containerd in the node's namespace, with no CNI config
// yet: the config needs flanneld's subnet, which needs the Node kubelet
// registers (AfterKubelet).
func (k *flannelKind) Start(n *Node) string {
	t := n.c.t
	dir := filepath.Join(n.Dir, "ctrd")
	bin := harness.ContainerdBinDir()
	socket := filepath.Join(dir, "containerd.sock")
	for _, d := range []string{filepath.Join(dir, "net.d"), filepath.Join(dir, "flannel")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, reg := range harness.MirroredRegistries {
		p := filepath.Join(dir, "certs.d", reg, "hosts.toml")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("server = \"http://%s\"\n", n.c.Registry.Addr)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// harness.Containerd's config: everything under dir, NRI off, OOM
	// scores clamped, cgroupfs.
	cfg := harness.ContainerdConfig(dir, socket, bin, filepath.Join(dir, "net.d"), false)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := n.in(filepath.Join(bin, "containerd"), "--config", cfgPath)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	p := harness.StartProcess(t, n.Name+" containerd", cmd, filepath.Join(dir, "containerd.log"))
	k.ctrd[n] = p
	p.WaitReady(t, 30*time.Second, n.Name+" containerd answers", func() (bool, string) {
		_, e, err := crictl(socket, "version")
		return err == nil, e
	})
	return socket
}

// AfterKubelet starts flanneld once kubelet has registered the Node, then
// writes the bridge conflist on the subnet flanneld wrote.
func (k *flannelKind) AfterKubelet(n *Node) {
	t := n.c.t
	dir := filepath.Join(n.Dir, "ctrd", "flannel")
	netConf := filepath.Join(dir, "net-conf.json")
	if err := os.WriteFile(netConf, []byte(fmt.Sprintf(`{"Network": %q, "Backend": {"Type": "vxlan"}}`, clusterCIDR)), 0o644); err != nil {
		t.Fatal(err)
	}
	subnetFile := filepath.Join(dir, "subnet.env")
	args := n.in(flanneldPath(), "--kube-subnet-mgr", "--kubeconfig-file", overlayKubeconfig(n),
		"--iface", "eth0", "--public-ip", n.IP, "--net-config-path", netConf, "--subnet-file", subnetFile, "--ip-masq=false", "-v", "2")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "NODE_NAME="+n.Name)
	p := harness.StartProcess(t, n.Name+" flanneld", cmd, filepath.Join(dir, "flanneld.log"))
	k.flannel[n] = p
	var env map[string]string
	p.WaitReady(t, 90*time.Second, n.Name+" flanneld writes its subnet file", func() (bool, string) {
		env = readEnvFile(subnetFile)
		return env["FLANNEL_SUBNET"] != "" && env["FLANNEL_MTU"] != "", p.LogTail(5)
	})
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "flannel-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "isDefaultGateway": true,
      "hairpinMode": true,
      "mtu": %s,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, env["FLANNEL_MTU"], subnetOf(env["FLANNEL_SUBNET"]), filepath.Join(dir, "ipam"))
	tmp := filepath.Join(n.Dir, "ctrd", "net.d", ".10-flannel.conflist")
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(n.Dir, "ctrd", "net.d", "10-flannel.conflist")); err != nil {
		t.Fatal(err)
	}
}

// subnetOf turns flannel's "10.244.3.1/24" (the gateway) into the subnet.
func subnetOf(gw string) string {
	ip, bits, _ := strings.Cut(gw, "/")
	i := strings.LastIndexByte(ip, '.')
	return ip[:i] + ".0/" + bits
}

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

func (k *flannelKind) Stop(n *Node) []string {
	var errs []string
	if p := k.flannel[n]; p != nil {
		if p.Crashed() {
			errs = append(errs, fmt.Sprintf("%s flanneld exited during the test: %v", n.Name, p.ExitErr()))
		}
		if p.Running() && !p.Signal(syscall.SIGTERM, 20*time.Second) {
			errs = append(errs, n.Name+" flanneld did not exit within 20s of SIGTERM")
			p.Signal(syscall.SIGKILL, 10*time.Second)
		}
	}
	p := k.ctrd[n]
	if p == nil {
		return errs
	}
	if p.Crashed() {
		errs = append(errs, fmt.Sprintf("%s containerd exited during the test: %v", n.Name, p.ExitErr()))
	}
	if p.Running() {
		if out, _, err := crictl(n.Socket, "pods", "--state", "ready", "-q"); err == nil && strings.TrimSpace(out) != "" {
			errs = append(errs, fmt.Sprintf("%s: pod sandboxes still ready after kubelet stopped: %s", n.Name, strings.Join(strings.Fields(out), " ")))
		}
		if out, _, err := crictl(n.Socket, "pods", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				crictl(n.Socket, "stopp", id)
				if _, e, err := crictl(n.Socket, "rmp", "-f", id); err != nil {
					errs = append(errs, fmt.Sprintf("%s: crictl rmp %s: %v: %s", n.Name, id, err, e))
				}
			}
		}
		if !p.Signal(syscall.SIGTERM, 20*time.Second) {
			errs = append(errs, n.Name+" containerd did not exit within 20s of SIGTERM")
			p.Signal(syscall.SIGKILL, 10*time.Second)
		}
	}
	return errs
}

func (k *flannelKind) Logs(n *Node) []string {
	return []string{filepath.Join(n.Dir, "ctrd", "containerd.log"), filepath.Join(n.Dir, "ctrd", "flannel", "flanneld.log")}
}

func (k *flannelKind) Procs(n *Node) []*harness.Process {
	var out []*harness.Process
	for _, p := range []*harness.Process{k.ctrd[n], k.flannel[n]} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// testFlannelNode: a flannel node (containerd, flanneld) joins the cluster
// of crib nodes; a pod on it and the web pods on the crib nodes reach each
// other both ways, through flanneld's VTEP on one side and crib's on the
// other, each programmed from the other's Node annotations.
func testFlannelNode(t *testing.T, c *Cluster, st *state) {
	k := newFlannelKind()
	if m := k.missing(); m != "" {
		// make test-cluster builds both and names them: missing then is
		// a failure; a bare go test without them skips.
		if os.Getenv("FLANNELD") != "" && os.Getenv("CRIB_CONTAINERD_DIR") != "" {
			t.Fatalf("no %s", m)
		}
		t.Skipf("no %s (scripts/build-flannel.sh, scripts/build-containerd.sh)", m)
	}
	n := c.AddNode(k)
	harness.Eventually(t, 120*time.Second, n.Name+" Ready", func() (bool, string) {
		c.checkRunning(t)
		r := nodeReady(t, c, n.Name)
		return r == "True", r
	})
	reachBothWays(t, c, n, "flannel-pod")
}

// reachBothWays runs a busybox httpd pod named name on node n and checks
// that it and every web pod reach each other.
func reachBothWays(t *testing.T, c *Cluster, n *Node, name string) {
	t.Helper()
	c.apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: crib-test}
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: `+busybox+`
    command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
`, name, n.Name))
	var pod Pod
	harness.Eventually(t, 120*time.Second, "pod "+name+" Ready", func() (bool, string) {
		for _, p := range c.pods(t, "") {
			if p.Metadata.Name == name {
				pod = p
				return p.Ready(), fmt.Sprintf("%s ready=%v", p.Status.Phase, p.Ready())
			}
		}
		return false, "no pod " + name
	})
	web := c.pods(t, "app=web")
	byIP := map[string]string{pod.Status.PodIP: name}
	var targets []string
	for _, p := range web {
		byIP[p.Status.PodIP] = p.Metadata.Name
		targets = append(targets, p.Status.PodIP)
	}
	checkTraffic(t, c.kubectl(t, "-n", testNS, "exec", name, "--", "sh", "-c", trafficScript(1, targets)), byIP)
	for _, p := range web {
		checkTraffic(t, c.kubectl(t, "-n", testNS, "exec", p.Metadata.Name, "--", "sh", "-c", trafficScript(1, []string{pod.Status.PodIP})), byIP)
	}
}
