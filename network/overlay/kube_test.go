package overlay

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	fcache "k8s.io/client-go/tools/cache/testing"
)

const (
	testMAC  = "0a:58:0a:f4:01:00"
	testMAC2 = "0a:58:0a:f4:01:99"
)

// testNode is a Node as flannel (or crib) publishes it; edit returns a
// changed copy.
func testNode(name, podCIDR, publicIP, mac string) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR},
	}
	if podCIDR != "" {
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	if mac != "" {
		n.Annotations[annSubnetManager] = "true"
		n.Annotations[annBackendType] = "vxlan"
		n.Annotations[annBackendData] = `{"VNI":1,"VtepMAC":"` + mac + `"}`
		n.Annotations[annPublicIP] = publicIP
	}
	return n
}

func edit(n *corev1.Node, f func(*corev1.Node)) *corev1.Node {
	n = n.DeepCopy()
	f(n)
	return n
}

// TestNodeLease: a Node's annotations and pod CIDR make its lease; a node
// without flannel's annotations is not in the overlay; anything malformed
// is an error naming the field.
func TestNodeLease(t *testing.T) {
	valid := testNode("n2", "10.244.2.0/24", "192.168.50.12", testMAC)
	tests := []struct {
		name    string
		node    *corev1.Node
		in      bool
		wantErr string // substring; "" for none
		ip      string
		subnet  string
	}{
		{name: "valid", node: valid, in: true, ip: "192.168.50.12", subnet: "10.244.2.0/24"},
		{name: "podCIDR only, no podCIDRs", node: edit(valid, func(n *corev1.Node) { n.Spec.PodCIDRs = nil }), in: true, ip: "192.168.50.12", subnet: "10.244.2.0/24"},
		{name: "dual-stack, IPv6 first", node: edit(valid, func(n *corev1.Node) {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "fd00:10:244:2::/64", []string{"fd00:10:244:2::/64", "10.244.2.0/24"}
		}), in: true, ip: "192.168.50.12", subnet: "10.244.2.0/24"},
		{name: "public-ip-overwrite", node: edit(valid, func(n *corev1.Node) { n.Annotations[annPublicIPOverwrite] = "203.0.113.7" }), in: true, ip: "203.0.113.7", subnet: "10.244.2.0/24"},
		{name: "not published", node: testNode("n2", "10.244.2.0/24", "", "")},
		{name: "kube-subnet-manager false", node: edit(valid, func(n *corev1.Node) { n.Annotations[annSubnetManager] = "false" })},
		{name: "missing MAC", node: edit(valid, func(n *corev1.Node) { n.Annotations[annBackendData] = `{"VNI":1}` }), wantErr: "VtepMAC"},
		{name: "bad MAC", node: edit(valid, func(n *corev1.Node) { n.Annotations[annBackendData] = `{"VNI":1,"VtepMAC":"zz"}` }), wantErr: "VtepMAC"},
		{name: "bad JSON", node: edit(valid, func(n *corev1.Node) { n.Annotations[annBackendData] = `{"VNI":1,` }), wantErr: annBackendData},
		{name: "missing backend-data", node: edit(valid, func(n *corev1.Node) { delete(n.Annotations, annBackendData) }), wantErr: annBackendData},
		{name: "VNI mismatch", node: edit(valid, func(n *corev1.Node) { n.Annotations[annBackendData] = `{"VNI":2,"VtepMAC":"` + testMAC + `"}` }), wantErr: "VNI 2"},
		{name: "host-gw backend", node: edit(valid, func(n *corev1.Node) { n.Annotations[annBackendType] = "host-gw" }), wantErr: annBackendType},
		{name: "missing public IP", node: edit(valid, func(n *corev1.Node) { delete(n.Annotations, annPublicIP) }), wantErr: annPublicIP},
		{name: "IPv6 public IP", node: edit(valid, func(n *corev1.Node) { n.Annotations[annPublicIP] = "2001:db8::1" }), wantErr: annPublicIP},
		{name: "garbage overwrite", node: edit(valid, func(n *corev1.Node) { n.Annotations[annPublicIPOverwrite] = "nat-box" }), wantErr: annPublicIPOverwrite},
		{name: "no pod CIDR yet", node: edit(valid, func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "", nil }), wantErr: "spec.podCIDR"},
		{name: "IPv6-only pod CIDR", node: edit(valid, func(n *corev1.Node) {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = "fd00:10:244:2::/64", []string{"fd00:10:244:2::/64"}
		}), wantErr: "no IPv4"},
		{name: "bad pod CIDR", node: edit(valid, func(n *corev1.Node) { n.Spec.PodCIDRs = []string{"10.244.2.0/33"} }), wantErr: "spec.podCIDRs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, in, err := nodeLease(tc.node, 1)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || in != tc.in {
				t.Fatalf("in %v, error %v; want in %v, no error", in, err, tc.in)
			}
			if !in {
				return
			}
			if l.Name != "n2" || l.PublicIP.String() != tc.ip || l.Subnet.String() != tc.subnet || l.VtepMAC.String() != testMAC {
				t.Errorf("lease %+v, want n2 %s %s %s", l, tc.ip, tc.subnet, testMAC)
			}
		})
	}
}

func testLease(t *testing.T, name, subnet, ip, mac string) Lease {
	t.Helper()
	_, sn, err := net.ParseCIDR(subnet)
	if err != nil {
		t.Fatal(err)
	}
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	return Lease{Name: name, PublicIP: net.ParseIP(ip).To4(), Subnet: sn, VtepMAC: hw}
}

// TestPublishPatch: the patch sets exactly flannel's four annotations,
// only those that differ, nothing when all agree, and publishes
// public-ip-overwrite as the public IP.
func TestPublishPatch(t *testing.T) {
	own := testLease(t, "n1", "10.244.1.0/24", "192.168.50.11", testMAC)
	published := testNode("n1", "10.244.1.0/24", "192.168.50.11", testMAC).Annotations
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range published {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		cur     map[string]string
		want    map[string]string // the patch's annotations; nil for no patch
		ip      string
		wantErr string
	}{
		{name: "fresh node", cur: map[string]string{"other": "x"}, ip: "192.168.50.11", want: map[string]string{
			annSubnetManager: "true",
			annBackendType:   "vxlan",
			annBackendData:   `{"VNI":1,"VtepMAC":"` + testMAC + `"}`,
			annPublicIP:      "192.168.50.11",
		}},
		{name: "already published", cur: published, ip: "192.168.50.11"},
		{name: "new VTEP MAC", cur: with(annBackendData, `{"VNI":1,"VtepMAC":"`+testMAC2+`"}`), ip: "192.168.50.11",
			want: map[string]string{annBackendData: `{"VNI":1,"VtepMAC":"` + testMAC + `"}`}},
		{name: "flannel's host-gw before", cur: with(annBackendType, "host-gw"), ip: "192.168.50.11",
			want: map[string]string{annBackendType: "vxlan"}},
		{name: "overwrite set by an operator", cur: with(annPublicIPOverwrite, "203.0.113.7"), ip: "203.0.113.7",
			want: map[string]string{annPublicIP: "203.0.113.7"}},
		{name: "overwrite already published", cur: with(annPublicIPOverwrite, "203.0.113.7", annPublicIP, "203.0.113.7"), ip: "203.0.113.7"},
		{name: "garbage overwrite", cur: with(annPublicIPOverwrite, "nat-box"), wantErr: annPublicIPOverwrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			patch, ip, err := publishPatch(tc.cur, own, 1)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ip.String() != tc.ip {
				t.Errorf("public IP %v, want %s", ip, tc.ip)
			}
			if tc.want == nil {
				if patch != nil {
					t.Errorf("patch %s, want none", patch)
				}
				return
			}
			assertPatch(t, patch, tc.want)
		})
	}
}

// assertPatch checks that patch is {"metadata":{"annotations":want}} and
// nothing else.
func assertPatch(t *testing.T, patch []byte, want map[string]string) {
	t.Helper()
	var got struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(patch, &got); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	var top map[string]map[string]any
	_ = json.Unmarshal(patch, &top)
	if len(top) != 1 || len(top["metadata"]) != 1 || len(got.Metadata.Annotations) != len(want) {
		t.Fatalf("patch %s, want exactly the annotations %v", patch, want)
	}
	for k, v := range want {
		if got.Metadata.Annotations[k] != v {
			t.Errorf("patch %s: %s = %q, want %q", patch, k, got.Metadata.Annotations[k], v)
		}
	}
}

// noWatchList is FakeControllerSource declaring what it is: it cannot
// stream the initial list (the reflector's WatchListClient mode).
type noWatchList struct{ *fcache.FakeControllerSource }

func (noWatchList) IsWatchListSemanticsUnSupported() bool { return true }

// unreachable fails List with err while it is set: an API server away.
type unreachable struct {
	noWatchList
	err atomic.Pointer[error]
}

func (u *unreachable) List(opts metav1.ListOptions) (runtime.Object, error) {
	if err := u.err.Load(); err != nil {
		return nil, *err
	}
	return u.noWatchList.List(opts)
}

func cacheTombstone(key string, obj runtime.Object) cache.DeletedFinalStateUnknown {
	return cache.DeletedFinalStateUnknown{Key: key, Obj: obj}
}

// fakePatcher records status patches.
type fakePatcher struct {
	mu      sync.Mutex
	patches [][]byte
	err     error
}

func (p *fakePatcher) patch(_ context.Context, name string, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.patches = append(p.patches, b)
	return nil
}

func (p *fakePatcher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.patches)
}

func (p *fakePatcher) last() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.patches[len(p.patches)-1]
}

type kubeFixture struct {
	src  *KubeSource
	api  *fcache.FakeControllerSource
	pat  *fakePatcher
	logs *logtest.Hook
}

func newKubeFixture(t *testing.T, nodes ...*corev1.Node) *kubeFixture {
	t.Helper()
	f := &kubeFixture{api: fcache.NewFakeControllerSource(), pat: &fakePatcher{}}
	for _, n := range nodes {
		f.api.Add(n)
	}
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	f.logs = hook
	src, err := NewKubeSource(KubeOptions{
		NodeName: "n1", VNI: 1, Retry: 50 * time.Millisecond, Log: log,
		Connect: func() (KubeClient, error) {
			return KubeClient{Nodes: noWatchList{f.api}, PatchStatus: f.pat.patch}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(); f.api.Shutdown() })
	f.src = src
	eventually(t, "synced", func() (bool, string) { err := src.Healthy(); return err == nil, errString(err) })
	return f
}

// waitChange waits for a signal on Changes.
func (f *kubeFixture) waitChange(t *testing.T, what string) {
	t.Helper()
	select {
	case <-f.src.Changes():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no signal on Changes", what)
	}
}

// drain empties a pending signal.
func (f *kubeFixture) drain() {
	select {
	case <-f.src.Changes():
	default:
	}
}

// leases returns node name → "subnet ip mac".
func (f *kubeFixture) leases(t *testing.T) map[string]string {
	t.Helper()
	ls, err := f.src.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range ls {
		out[l.Name] = l.Subnet.String() + " " + l.PublicIP.String() + " " + l.VtepMAC.String()
	}
	return out
}

func (f *kubeFixture) warnings(substr string) int {
	n := 0
	for _, e := range f.logs.AllEntries() {
		if e.Level == logrus.WarnLevel && strings.Contains(e.Message, substr) {
			n++
		}
	}
	return n
}

// TestKubeSourcePeers: Leases follow the Node informer: valid nodes in,
// garbage skipped and logged once per change, a pod CIDR change alone
// signalled and seen (flannel's update handler compares annotations only),
// deletions, the informer's DeletedFinalStateUnknown included, drop the
// lease.
func TestKubeSourcePeers(t *testing.T) {
	n2 := testNode("n2", "10.244.2.0/24", "192.168.50.12", testMAC2)
	bad := edit(testNode("n3", "10.244.3.0/24", "192.168.50.13", testMAC), func(n *corev1.Node) {
		n.Annotations[annBackendData] = "{garbage"
	})
	n4 := testNode("n4", "10.244.4.0/24", "192.168.50.14", "0a:58:0a:f4:04:00")
	joining := testNode("n5", "10.244.5.0/24", "", "") // its agent has not published yet
	f := newKubeFixture(t, testNode("n1", "10.244.1.0/24", "", ""), n2, bad, n4, joining)
	want := map[string]string{
		"n2": "10.244.2.0/24 192.168.50.12 " + testMAC2,
		"n4": "10.244.4.0/24 192.168.50.14 0a:58:0a:f4:04:00",
	}
	if got := f.leases(t); len(got) != 2 || got["n2"] != want["n2"] || got["n4"] != want["n4"] {
		t.Fatalf("leases %v, want %v", got, want)
	}
	if n := f.warnings("skipping node"); n != 1 {
		t.Errorf("%d warnings about skipped nodes, want 1 (the garbage node; the joining one is no fault)", n)
	}

	// An unrelated change of the garbage node (a label, a heartbeat) is
	// no news: not logged again. A new garbage is.
	f.api.Modify(edit(bad, func(n *corev1.Node) { n.Labels = map[string]string{"a": "b"} }))
	f.api.Modify(edit(bad, func(n *corev1.Node) { n.Annotations[annBackendType] = "wireguard" }))
	eventually(t, "second warning", func() (bool, string) { return f.warnings("skipping node") == 2, "" })
	time.Sleep(200 * time.Millisecond)
	if n := f.warnings("skipping node"); n != 2 {
		t.Errorf("%d warnings about the garbage node after two changes, one of them new garbage; want 2", n)
	}

	// The pod CIDR alone changes.
	f.drain()
	f.api.Modify(edit(n2, func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.22.0/24", []string{"10.244.22.0/24"} }))
	f.waitChange(t, "pod CIDR change")
	eventually(t, "n2's new subnet", func() (bool, string) {
		got := f.leases(t)["n2"]
		return strings.HasPrefix(got, "10.244.22.0/24 "), got
	})

	// The public IP alone, then the VTEP MAC alone.
	f.drain()
	f.api.Modify(edit(n2, func(n *corev1.Node) {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.22.0/24", []string{"10.244.22.0/24"}
		n.Annotations[annPublicIP] = "192.168.50.112"
	}))
	f.waitChange(t, "public IP change")
	eventually(t, "n2's new public IP", func() (bool, string) {
		got := f.leases(t)["n2"]
		return got == "10.244.22.0/24 192.168.50.112 "+testMAC2, got
	})

	// A node deleted.
	f.drain()
	f.api.Delete(n4)
	f.waitChange(t, "delete")
	eventually(t, "n4 gone", func() (bool, string) { _, ok := f.leases(t)["n4"]; return !ok, "" })

	// A deletion the watch missed: the relist finds n2 gone and the
	// informer hands a DeletedFinalStateUnknown tombstone.
	f.drain()
	f.api.DeleteDropWatch(n2)
	f.api.ResetWatch()
	f.waitChange(t, "tombstone")
	eventually(t, "n2 gone", func() (bool, string) { _, ok := f.leases(t)["n2"]; return !ok, "" })
}

// TestKubeSourceTombstone: onNode takes a DeletedFinalStateUnknown for the
// Node it wraps.
func TestKubeSourceTombstone(t *testing.T) {
	f := newKubeFixture(t, testNode("n2", "10.244.2.0/24", "192.168.50.12", testMAC2))
	if _, ok := f.leases(t)["n2"]; !ok {
		t.Fatal("n2 not in the leases")
	}
	f.drain()
	f.src.onNode(cacheTombstone("n2", testNode("n2", "10.244.2.0/24", "192.168.50.12", testMAC2)), true)
	f.waitChange(t, "tombstone")
	if _, ok := f.leases(t)["n2"]; ok {
		t.Error("n2 still leased after its tombstone")
	}
}

// TestKubeSourcePublish: this node's pod CIDR is its subnet; Publish patches
// the status with flannel's annotations once, not again when the Node says
// the same, and again by itself when an operator sets public-ip-overwrite.
func TestKubeSourcePublish(t *testing.T) {
	n1 := testNode("n1", "", "", "")
	f := newKubeFixture(t, n1)
	if cidr, why := f.src.NodeSubnet(); cidr != "" || !strings.Contains(why, "waiting for node n1's spec.podCIDR") {
		t.Errorf("NodeSubnet without a pod CIDR = %q, %q", cidr, why)
	}
	f.drain()
	n1 = edit(n1, func(n *corev1.Node) { n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.1.0/24", []string{"10.244.1.0/24"} })
	f.api.Modify(n1)
	f.waitChange(t, "own pod CIDR")
	eventually(t, "own subnet", func() (bool, string) { c, why := f.src.NodeSubnet(); return c == "10.244.1.0/24", why })

	own := testLease(t, "n1", "10.244.1.0/24", "192.168.50.11", testMAC)
	if err := f.src.Publish(context.Background(), own); err != nil {
		t.Fatal(err)
	}
	if f.pat.count() != 1 {
		t.Fatalf("%d patches, want 1", f.pat.count())
	}
	assertPatch(t, f.pat.last(), map[string]string{
		annSubnetManager: "true",
		annBackendType:   "vxlan",
		annBackendData:   `{"VNI":1,"VtepMAC":"` + testMAC + `"}`,
		annPublicIP:      "192.168.50.11",
	})
	// The API server applies it; the informer brings it back.
	n1 = edit(n1, func(n *corev1.Node) {
		n.Annotations = testNode("n1", "", "192.168.50.11", testMAC).Annotations
	})
	f.api.Modify(n1)
	eventually(t, "own lease", func() (bool, string) { return f.leases(t)["n1"] != "", "" })
	// (A republication the pod CIDR's event kicked may have raced the
	// first Publish and patched the same again before the informer
	// caught up; from here on the Node says what is wanted.)
	time.Sleep(200 * time.Millisecond)
	patched := f.pat.count()
	if err := f.src.Publish(context.Background(), own); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if f.pat.count() != patched {
		t.Fatalf("%d patches after publishing what the Node says, want still %d", f.pat.count(), patched)
	}

	// An operator sets public-ip-overwrite: the source republishes.
	n1 = edit(n1, func(n *corev1.Node) { n.Annotations[annPublicIPOverwrite] = "203.0.113.7" })
	f.api.Modify(n1)
	eventually(t, "republished", func() (bool, string) { return f.pat.count() == patched+1, "" })
	assertPatch(t, f.pat.last(), map[string]string{annPublicIP: "203.0.113.7"})
	eventually(t, "own lease by the overwrite", func() (bool, string) {
		got := f.leases(t)["n1"]
		return strings.Contains(got, " 203.0.113.7 "), got
	})

	// A failing patch is Publish's error, with the node named.
	f.pat.mu.Lock()
	f.pat.err = errors.New("forbidden")
	f.pat.mu.Unlock()
	other := testLease(t, "n1", "10.244.1.0/24", "192.168.50.11", testMAC2)
	if err := f.src.Publish(context.Background(), other); err == nil || !strings.Contains(err.Error(), "node n1") {
		t.Errorf("Publish with a failing patch: %v", err)
	}
	if err := f.src.Publish(context.Background(), testLease(t, "n9", "10.244.9.0/24", "192.168.50.19", testMAC)); err == nil {
		t.Error("Publish of another node's lease: no error")
	}
}

// TestKubeSourceNotReady: a kubeconfig that does not load, or an API
// server that cannot be reached, leave the source unhealthy with the
// reason, and the Manager not ready with it; when the server answers, the
// source becomes healthy and the Manager takes the Node's pod CIDR.
func TestKubeSourceNotReady(t *testing.T) {
	t.Run("kubeconfig", func(t *testing.T) {
		src, err := NewKubeSource(KubeOptions{
			NodeName: "n1", VNI: 1, Retry: 20 * time.Millisecond, Log: logrus.New(),
			Connect: KubeconfigClient(filepath.Join(t.TempDir(), "missing.conf")),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		m := newTestManager(t, src)
		eventually(t, "not ready with the kubeconfig's error", func() (bool, string) {
			ok, msg := m.Ready()
			return !ok && strings.Contains(msg, "missing.conf"), msg
		})
	})
	t.Run("unparsable kubeconfig", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kubelet.conf")
		if err := writeFileAtomic(path, []byte("apiVersion: v1\nclusters: [garbage\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := KubeconfigClient(path)(); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("KubeconfigClient of garbage: %v, want an error naming the file", err)
		}
	})
	t.Run("server unreachable, then back", func(t *testing.T) {
		api := fcache.NewFakeControllerSource()
		api.Add(testNode("n1", "10.244.1.0/24", "", ""))
		defer api.Shutdown()
		lw := &unreachable{noWatchList: noWatchList{api}}
		refused := errors.New("dial tcp 192.168.50.1:6443: connect: connection refused")
		lw.err.Store(&refused)
		src, err := NewKubeSource(KubeOptions{
			NodeName: "n1", VNI: 1, Retry: 20 * time.Millisecond, Log: logrus.New(),
			Connect: func() (KubeClient, error) {
				return KubeClient{Nodes: lw, PatchStatus: (&fakePatcher{}).patch}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		m := newTestManager(t, src)
		eventually(t, "not ready with the list error", func() (bool, string) {
			ok, msg := m.Ready()
			return !ok && strings.Contains(msg, "list Nodes") && strings.Contains(msg, "connection refused"), msg
		})
		// The reflector retries with a backoff; the server comes back.
		lw.err.Store(nil)
		eventually(t, "healthy", func() (bool, string) { err := src.Healthy(); return err == nil, errString(err) })
		eventually(t, "the Node's pod CIDR taken", func() (bool, string) {
			m.trigger()
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.subnet != nil && m.subnet.String() == "10.244.1.0/24", ""
		})
		// kubelet's UpdateRuntimeConfig carries the same value: no change.
		if changed, err := m.setSubnet("10.244.1.0/24"); changed || err != nil {
			t.Errorf("kubelet's same pod CIDR: changed %v, error %v", changed, err)
		}
	})
}
