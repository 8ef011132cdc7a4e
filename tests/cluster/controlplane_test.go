//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// The cluster's address plan. The underlay is a /24 on a bridge in the
// host's network namespace (10.86.<N>.0/24, N from the PID, as
// harness.PerProcessNetwork picks the other suites' 10.88.<N>); the
// control plane and the registry listen on its .1, node i is .(10+i).
// Pod and Service ranges exist only inside the nodes' namespaces.
const (
	clusterCIDR = "10.244.0.0/16"
	serviceCIDR = "10.96.0.0/16"
	apiService  = "10.96.0.1"
)

// Cluster is one control plane, its underlay bridge and registry, and its
// nodes. Cleanup tears down in reverse: workloads, nodes, control plane,
// bridge; then it checks that nothing is left.
type Cluster struct {
	t         *testing.T
	ID        string
	Dir       string // /tmp/ccl-<id>: everything the test writes
	Bridge    string
	Prefix    string // "10.86.<N>."
	HostIP    string // the bridge's address: API server, registry
	PKI       *pki
	Registry  *harness.Registry
	APIServer string // https://HostIP:port
	Admin     string // the admin kubeconfig (system:masters)
	Nodes     []*Node

	controlPlane []*harness.Process // started in order, stopped in reverse
	sysctls      map[string]string
	hadLogLinks  bool
}

// newCluster creates the bridge, the registry and the control plane. The
// nodes come from AddNode.
func newCluster(t *testing.T) *Cluster {
	t.Helper()
	id := harness.RandomHex(2)
	n := 10 + os.Getpid()%200
	c := &Cluster{t: t, ID: id, Dir: "/tmp/ccl-" + id, Bridge: "ccl" + id,
		Prefix: fmt.Sprintf("10.86.%d.", n)}
	c.HostIP = c.Prefix + "1"
	if err := os.MkdirAll(c.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// Under /tmp with mode 0711, as harness.Start: pods' root may be an
	// unprivileged user on the host that must search its way down.
	if err := os.Chmod(c.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	c.saveHost()
	t.Cleanup(c.cleanup)

	run(t, "ip", "link", "add", c.Bridge, "type", "bridge")
	run(t, "ip", "addr", "add", c.HostIP+"/24", "dev", c.Bridge)
	run(t, "ip", "link", "set", c.Bridge, "up")

	c.Registry = harness.StartRegistry(t, harness.RegistryOptions{Host: c.HostIP})
	c.PKI = newPKI(t, filepath.Join(c.Dir, "pki"))
	c.startControlPlane()
	return c
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

// freePort is a TCP port nobody listens on right now on ip.
func freePort(t testing.TB, ip string) string {
	_, port, _ := net.SplitHostPort(harness.FreeAddrOn(t, ip))
	return port
}

// startDaemon starts a control-plane process with its log under c.Dir.
func (c *Cluster) startDaemon(name string, args ...string) *harness.Process {
	c.t.Helper()
	p := harness.StartProcess(c.t, name, exec.Command(kubeBin(name), args...), filepath.Join(c.Dir, name+".log"))
	c.controlPlane = append(c.controlPlane, p)
	return p
}

// startControlPlane starts etcd, the API server, the controller-manager
// and the scheduler, and waits until the API server is ready.
func (c *Cluster) startControlPlane() {
	t := c.t
	start := time.Now()
	etcdClient := "http://127.0.0.1:" + freePort(t, "127.0.0.1")
	etcdPeer := "http://127.0.0.1:" + freePort(t, "127.0.0.1")
	etcd := c.startDaemon("etcd",
		"--name", "crib",
		"--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", etcdClient, "--advertise-client-urls", etcdClient,
		"--listen-peer-urls", etcdPeer, "--initial-advertise-peer-urls", etcdPeer,
		"--initial-cluster", "crib="+etcdPeer,
		"--log-level", "warn")
	etcd.WaitReady(t, 30*time.Second, "etcd answers /health", func() (bool, string) {
		out, err := exec.Command("curl", "-sS", "-m", "2", etcdClient+"/health").CombinedOutput()
		return err == nil && strings.Contains(string(out), `"health":"true"`), string(out)
	})

	p := c.PKI
	ip := net.ParseIP(c.HostIP)
	apiCrt, apiKey := p.issue("apiserver", certSpec{CN: "kube-apiserver", Server: true,
		IPs: []net.IP{ip, net.ParseIP(apiService), net.ParseIP("127.0.0.1")},
		DNS: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}})
	kcCrt, kcKey := p.issue("apiserver-kubelet-client", certSpec{CN: "kube-apiserver-kubelet-client", Orgs: []string{"system:masters"}})
	port := freePort(t, c.HostIP)
	c.APIServer = "https://" + net.JoinHostPort(c.HostIP, port)
	c.Admin = p.kubeconfig("admin", c.APIServer, certSpec{CN: "crib-admin", Orgs: []string{"system:masters"}})
	api := c.startDaemon("kube-apiserver",
		"--etcd-servers", etcdClient,
		"--bind-address", c.HostIP, "--advertise-address", c.HostIP, "--secure-port", port,
		"--cert-dir", filepath.Join(c.Dir, "apiserver-certs"),
		"--tls-cert-file", apiCrt, "--tls-private-key-file", apiKey,
		"--client-ca-file", p.CAFile,
		"--kubelet-client-certificate", kcCrt, "--kubelet-client-key", kcKey,
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-key-file", p.SAPub,
		"--service-account-signing-key-file", p.SAKey,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"--v", "1")
	api.WaitReady(t, 90*time.Second, "kube-apiserver /readyz", func() (bool, string) {
		out, err := c.kubectlRaw(context.Background(), "get", "--raw", "/readyz")
		return err == nil && strings.TrimSpace(out) == "ok", out
	})

	cm := p.kubeconfig("controller-manager", c.APIServer, certSpec{CN: "system:kube-controller-manager"})
	c.startDaemon("kube-controller-manager",
		"--kubeconfig", cm,
		"--authentication-kubeconfig", cm, "--authorization-kubeconfig", cm,
		"--bind-address", "127.0.0.1", "--secure-port", freePort(t, "127.0.0.1"),
		"--leader-elect=false",
		"--allocate-node-cidrs", "--cluster-cidr", clusterCIDR, "--node-cidr-mask-size", "24",
		"--service-cluster-ip-range", serviceCIDR,
		"--root-ca-file", p.CAFile,
		"--service-account-private-key-file", p.SAKey,
		"--use-service-account-credentials",
		"--cert-dir", filepath.Join(c.Dir, "cm-certs"),
		"--v", "1")
	sched := p.kubeconfig("scheduler", c.APIServer, certSpec{CN: "system:kube-scheduler"})
	c.startDaemon("kube-scheduler",
		"--kubeconfig", sched,
		"--authentication-kubeconfig", sched, "--authorization-kubeconfig", sched,
		"--bind-address", "127.0.0.1", "--secure-port", freePort(t, "127.0.0.1"),
		"--leader-elect=false",
		"--v", "1")
	// The controller-manager is ready for pods when it has made the
	// default namespace's service account (its token controller works).
	harness.Eventually(t, 60*time.Second, "the default service account exists", func() (bool, string) {
		c.checkControlPlane()
		out, err := c.kubectlRaw(context.Background(), "get", "serviceaccount", "default", "-o", "name")
		return err == nil, out
	})
	c.apply(t, overlayRBAC)
	t.Logf("control plane ready in %s (API server %s)", time.Since(start).Round(time.Millisecond), c.APIServer)
}

// checkControlPlane fails the test if a control-plane process exited.
func (c *Cluster) checkControlPlane() {
	for _, p := range c.controlPlane {
		if !p.Running() {
			c.t.Fatalf("%s exited: %v\n%s", p.Name, p.ExitErr(), p.LogTail(40))
		}
	}
}
