//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// Node is one cluster node: a network namespace on the underlay bridge
// (eth0, Prefix.(10+i)), a container runtime (its kind), kubelet and
// kube-proxy. The processes share the host's mount namespace, so every
// path a node uses is below its Dir.
type Node struct {
	c          *Cluster
	Index      int
	Name       string
	NS         string // ip netns name
	IP         string
	Dir        string
	CgroupRoot string // the runtime's cgroup parent and kubelet's cgroupRoot
	Kind       nodeKind
	Socket     string // the CRI socket the kind's Start returns
	// Kubeconfig is the node's credentials (CN system:node:<Name>, O
	// system:nodes): kubelet's, and the runtime's when it reads Nodes.
	Kubeconfig string

	kubelet *harness.Process
	proxy   *harness.Process
}

// nodeKind is what differs between node kinds: the container runtime (and
// its network agent) a node runs below kubelet. A new kind (e.g. containerd
// with flanneld) implements it; kubelet and kube-proxy are the same for all.
type nodeKind interface {
	// Name is the kind's name in node names and messages.
	Name() string
	// Start starts the runtime in n's namespace and returns its CRI socket.
	Start(n *Node) string
	// Stop removes the runtime's pods, stops it and reports what it left.
	Stop(n *Node) []string
	// Logs are the runtime's log files, for a failing test.
	Logs(n *Node) []string
	// Procs are the runtime's processes the test started.
	Procs(n *Node) []*harness.Process
}

// AddNode creates node i of the given kind and starts its runtime, kubelet
// and kube-proxy; it returns once kubelet has registered the Node.
func (c *Cluster) AddNode(kind nodeKind) *Node {
	t := c.t
	t.Helper()
	i := len(c.Nodes) + 1
	n := &Node{c: c, Index: i, Kind: kind,
		Name:       fmt.Sprintf("%s-%d", kind.Name(), i),
		NS:         fmt.Sprintf("ccl%s-n%d", c.ID, i),
		IP:         fmt.Sprintf("%s%d", c.Prefix, 10+i),
		Dir:        filepath.Join(c.Dir, fmt.Sprintf("n%d", i)),
		CgroupRoot: fmt.Sprintf("/ccl-%s-n%d", c.ID, i),
	}
	c.Nodes = append(c.Nodes, n)
	if err := os.MkdirAll(n.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "add", n.NS)
	host := fmt.Sprintf("ccl%sn%d", c.ID, i)
	run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n.NS)
	run(t, "ip", "link", "set", host, "master", c.Bridge, "up")
	run(t, "ip", "-n", n.NS, "addr", "add", n.IP+"/24", "dev", "eth0")
	run(t, "ip", "-n", n.NS, "link", "set", "eth0", "up")
	run(t, "ip", "-n", n.NS, "link", "set", "lo", "up")
	// The host is the node's router: traffic the node sends to a Service
	// address needs a route before kube-proxy's OUTPUT rules rewrite it.
	run(t, "ip", "-n", n.NS, "route", "add", "default", "via", c.HostIP)
	run(t, n.in("sysctl", "-qw", "net.ipv4.ip_forward=1")...)
	harness.MakeCgroupRoot(t, n.CgroupRoot)
	n.Kubeconfig = c.PKI.kubeconfig("node-"+n.Name, c.APIServer,
		certSpec{CN: "system:node:" + n.Name, Orgs: []string{"system:nodes"}})

	n.Socket = kind.Start(n)
	n.startKubelet()
	if a, ok := kind.(interface{ AfterKubelet(*Node) }); ok {
		// A kind whose network agent needs the Node object (flanneld).
		a.AfterKubelet(n)
	}
	n.startProxy()
	return n
}

// in returns cmd prefixed to run in the node's network namespace (and the
// host's mount namespace, unlike ip netns exec, which remounts /sys and so
// hides the cgroup hierarchies).
func (n *Node) in(cmd ...string) []string {
	return append([]string{"nsenter", "--net=/var/run/netns/" + n.NS, "--"}, cmd...)
}

// startKubelet writes the node's kubelet config, certificate and
// kubeconfig and starts kubelet; it waits for the Node object.
func (n *Node) startKubelet() {
	c, t := n.c, n.c.t
	dir := filepath.Join(n.Dir, "kubelet")
	for _, d := range []string{"root", "certs", "pod-logs", "volume-plugins"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %q
failCgroupV1: false
failSwapOn: false
address: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %q
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
clusterDNS: [10.96.0.10]
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
volumePluginDir: %q
podLogsDir: %q
resolvConf: /etc/resolv.conf
syncFrequency: 5s
nodeStatusUpdateFrequency: 2s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
`, n.CgroupRoot, n.IP, c.PKI.CAFile, n.Socket, n.Socket,
		filepath.Join(dir, "volume-plugins"), filepath.Join(dir, "pod-logs"))
	cfgPath := filepath.Join(dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := n.in(kubeBin("kubelet"),
		"--config", cfgPath,
		"--kubeconfig", n.Kubeconfig,
		"--root-dir", filepath.Join(dir, "root"),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--hostname-override", n.Name,
		"--node-ip", n.IP,
		"--v", "2")
	n.kubelet = harness.StartProcess(t, n.Name+" kubelet", exec.Command(args[0], args[1:]...), filepath.Join(dir, "kubelet.log"))
	n.kubelet.WaitReady(t, 90*time.Second, n.Name+" registered", func() (bool, string) {
		out, err := c.kubectlRaw(context.Background(), "get", "node", n.Name, "-o", "name")
		return err == nil, out
	})
}

// startProxy starts kube-proxy in iptables mode in the node's namespace.
// conntrack's table size is a host-wide setting a proxy in a namespace must
// not write: maxPerCore 0 and min 0 leave it alone, and the timeouts too.
func (n *Node) startProxy() {
	c, t := n.c, n.c.t
	dir := filepath.Join(n.Dir, "kube-proxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	kubeconfig := c.PKI.kubeconfig("kube-proxy-"+n.Name, c.APIServer, certSpec{CN: "system:kube-proxy"})
	cfg := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
mode: iptables
clusterCIDR: %s
hostnameOverride: %s
bindAddress: %s
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfig, clusterCIDR, n.Name, n.IP)
	cfgPath := filepath.Join(dir, "kube-proxy.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := n.in(kubeBin("kube-proxy"), "--config", cfgPath, "--v", "2")
	n.proxy = harness.StartProcess(t, n.Name+" kube-proxy", exec.Command(args[0], args[1:]...), filepath.Join(dir, "kube-proxy.log"))
}

// logs are the node's log files, runtime first.
func (n *Node) logs() []string {
	return append(n.Kind.Logs(n), filepath.Join(n.Dir, "kubelet", "kubelet.log"), filepath.Join(n.Dir, "kube-proxy", "kube-proxy.log"))
}

// cribKind is a crib node: cribd with the VXLAN overlay (flannel's
// data plane and defaults: flannel.1, VNI 1, UDP 8472, cni0) and the
// default crib-vxlan conflist it writes. Its peers are the cluster's Node
// objects (peers = "kubernetes"), as flannel's are; the subnet is its
// Node's spec.podCIDR. Its credentials are its own, in the group
// overlayRBAC binds: since Kubernetes 1.32 the node authorizer lets a
// node read only its own Node object (AuthorizeNodeWithSelectors), so
// kubelet's cannot list the peers (flannel runs with a service account
// and a ClusterRole like this one for the same reason).
type cribKind struct {
	proc map[*Node]*harness.Process
}

func newCribKind() *cribKind { return &cribKind{proc: map[*Node]*harness.Process{}} }

func (k *cribKind) Name() string { return "crib" }

// overlayKubeconfig issues the node's overlay credentials (crib's overlay
// or flanneld) and returns their kubeconfig.
func overlayKubeconfig(n *Node) string {
	return n.c.PKI.kubeconfig("overlay-"+n.Name, n.c.APIServer,
		certSpec{CN: "crib-overlay:" + n.Name, Orgs: []string{overlayGroup}})
}

// overlayGroup is the certificate group of the crib nodes' overlay
// credentials; overlayRBAC gives it what flannel's ClusterRole gives
// flanneld: read every Node, patch Node status (the annotations).
const overlayGroup = "crib:overlay"

const overlayRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: crib-overlay}
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [nodes/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crib-overlay}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: crib-overlay}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "` + overlayGroup + `"}
`

func (k *cribKind) Start(n *Node) string {
	t := n.c.t
	dir := filepath.Join(n.Dir, "cribd")
	socket := filepath.Join(dir, "run", "crib.sock")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "registries.conf"), []byte(harness.RegistriesConf(n.c.Registry.Addr, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`root_dir = %q
run_dir = %q

[grpc]
socket = %q

[log]
level = "debug"

[runtime]
cgroup_parent = %q
netns_dir = %q

# RuntimeClass handlers (testRuntimeClass).
[runtime.handlers.runc]
runtime_path = "runc"

[runtime.handlers.crun]
runtime_path = "crun"

[image]
registries_conf = %q

[network]
conf_dir = %q
bin_dirs = [%q, %q]
cache_dir = %q

[network.overlay]
enabled = true
cluster_network = %q
interface = "eth0"
node_name = %q
peers = "kubernetes"
kubeconfig = %q
subnet_file = %q
ipam_data_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "run"), socket, n.CgroupRoot, filepath.Join(dir, "netns"),
		filepath.Join(dir, "registries.conf"),
		filepath.Join(dir, "net.d"), harness.BinDir(), harness.StdCNIDir, filepath.Join(dir, "cni-cache"),
		clusterCIDR, n.Name, overlayKubeconfig(n), filepath.Join(dir, "subnet.env"), filepath.Join(dir, "ipam"))
	cfgPath := filepath.Join(dir, "crib.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := n.in(filepath.Join(harness.BinDir(), "cribd"), "--config", cfgPath, "--log-level", "debug")
	p := harness.StartProcess(t, n.Name+" cribd", exec.Command(args[0], args[1:]...), filepath.Join(dir, "cribd.log"))
	k.proc[n] = p
	p.WaitReady(t, 30*time.Second, n.Name+" cribd answers Version", func() (bool, string) {
		_, e, err := crictl(socket, "version")
		return err == nil, e
	})
	return socket
}

func (k *cribKind) Stop(n *Node) []string {
	p := k.proc[n]
	if p == nil {
		return nil
	}
	var errs []string
	if p.Crashed() {
		errs = append(errs, fmt.Sprintf("%s cribd exited during the test: %v", n.Name, p.ExitErr()))
	}
	if p.Running() {
		// kubelet stops the sandboxes of deleted pods and removes them
		// only at its next garbage collection: stopped ones may remain,
		// a ready one is a pod kubelet did not stop.
		if out, _, err := crictl(n.Socket, "pods", "--state", "ready", "-q"); err == nil && strings.TrimSpace(out) != "" {
			errs = append(errs, fmt.Sprintf("%s: pod sandboxes still ready after kubelet stopped: %s", n.Name, strings.Join(strings.Fields(out), " ")))
		}
		if out, _, err := crictl(n.Socket, "pods", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				if _, e, err := crictl(n.Socket, "stopp", id); err != nil {
					errs = append(errs, fmt.Sprintf("%s: crictl stopp %s: %v: %s", n.Name, id, err, e))
				}
				if _, e, err := crictl(n.Socket, "rmp", "-f", id); err != nil {
					errs = append(errs, fmt.Sprintf("%s: crictl rmp %s: %v: %s", n.Name, id, err, e))
				}
			}
		}
		if !p.Signal(15, 20*time.Second) {
			errs = append(errs, n.Name+" cribd did not exit within 20s of SIGTERM")
			p.Signal(9, 10*time.Second)
		}
	}
	return errs
}

func (k *cribKind) Procs(n *Node) []*harness.Process {
	if p := k.proc[n]; p != nil {
		return []*harness.Process{p}
	}
	return nil
}

func (k *cribKind) Logs(n *Node) []string {
	return []string{filepath.Join(n.Dir, "cribd", "cribd.log")}
}

// crictl runs crictl against a CRI socket.
func crictl(socket string, args ...string) (string, string, error) {
	full := append([]string{"--runtime-endpoint", "unix://" + socket, "--image-endpoint", "unix://" + socket, "--timeout", "30s"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, harness.CrictlPath(), full...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

// procs are the node's daemons that run now, runtime included.
func (n *Node) procs() []*harness.Process {
	out := n.Kind.Procs(n)
	for _, p := range []*harness.Process{n.kubelet, n.proxy} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}
