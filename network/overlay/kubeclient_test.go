package overlay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeAPI is the least of an API server KubeconfigClient's requests need:
// GET /api/v1/nodes as a list, as a watch held open (a streamed initial
// list is refused, as an old server would), and PATCH of a node's status.
type fakeAPI struct {
	t     *testing.T
	nodes []corev1.Node
	mu    sync.Mutex
	reqs  []string // method, path and content type of each patch
	body  []byte
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/nodes" && q.Get("watch") == "true" && q.Get("sendInitialEvents") == "true":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"BadRequest","code":400,"message":"no streaming list here"}`)
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/nodes" && q.Get("watch") == "true":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/nodes":
		w.Header().Set("Content-Type", "application/json")
		list := corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "10"}, Items: f.nodes}
		_ = json.NewEncoder(w).Encode(list)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/api/v1/nodes/"):
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		f.body = b
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(corev1.Node{TypeMeta: metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

// TestKubeconfigClient: the client KubeconfigClient builds, with its scheme
// of Node and NodeList only, lists and watches Nodes through a KubeSource
// (falling back from a refused streamed list) and patches nodes/<name>/status
// with a JSON merge patch.
func TestKubeconfigClient(t *testing.T) {
	api := &fakeAPI{t: t, nodes: []corev1.Node{
		*testNode("n1", "10.244.1.0/24", "", ""),
		*testNode("n2", "10.244.2.0/24", "192.168.50.12", testMAC2),
	}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "kubelet.conf")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: %s
users:
- name: u
  user:
    token: t
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`, srv.URL)
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	log, hook := logtest.NewNullLogger()
	src, err := NewKubeSource(KubeOptions{NodeName: "n1", VNI: 1, Connect: KubeconfigClient(path), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	eventually(t, "synced", func() (bool, string) { err := src.Healthy(); return err == nil, errString(err) })
	for _, e := range hook.AllEntries() {
		if e.Level <= logrus.WarnLevel {
			t.Errorf("logged %q %v: a refused streamed list, which the plain list follows, is no outage", e.Message, e.Data)
		}
	}
	if cidr, why := src.NodeSubnet(); cidr != "10.244.1.0/24" {
		t.Errorf("NodeSubnet = %q, %q; want 10.244.1.0/24", cidr, why)
	}
	ls, _ := src.Leases(context.Background())
	if len(ls) != 1 || ls[0].Name != "n2" || ls[0].Subnet.String() != "10.244.2.0/24" {
		t.Errorf("leases %v, want n2's", ls)
	}
	if err := src.Publish(context.Background(), testLease(t, "n1", "10.244.1.0/24", "192.168.50.11", testMAC)); err != nil {
		t.Fatal(err)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if len(api.reqs) != 1 || api.reqs[0] != "PATCH /api/v1/nodes/n1/status application/merge-patch+json" {
		t.Fatalf("requests %q, want one merge patch of /api/v1/nodes/n1/status", api.reqs)
	}
	assertPatch(t, api.body, map[string]string{
		annSubnetManager: "true",
		annBackendType:   "vxlan",
		annBackendData:   `{"VNI":1,"VtepMAC":"` + testMAC + `"}`,
		annPublicIP:      "192.168.50.11",
	})
}

// TestKubeconfigClientUnreachable: with the real client against an address
// nobody answers, the source is unhealthy and says why (the dial error),
// though the reflector's first attempt is a streamed list that it retries
// without falling back to a plain list.
func TestKubeconfigClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // the port is now refused
	path := filepath.Join(t.TempDir(), "overlay.kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- {name: c, cluster: {server: %s}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: x, context: {cluster: c, user: u}}
current-context: x
`, addr)
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	log, _ := logtest.NewNullLogger()
	src, err := NewKubeSource(KubeOptions{NodeName: "n1", VNI: 1, Connect: KubeconfigClient(path), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	eventually(t, "unhealthy naming the refused connection", func() (bool, string) {
		err := src.Healthy()
		return err != nil && strings.Contains(err.Error(), "connection refused"), errString(err)
	})
}
