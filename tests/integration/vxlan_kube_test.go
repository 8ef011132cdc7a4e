//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestOverlayKubeconfigNotReady: with peers = "kubernetes", a kubeconfig
// that is missing, does not parse, or names an API server nobody answers
// leaves cribd serving (RuntimeReady, pods listed) with NetworkReady false
// and a message naming the cause, not a crash or a start-up failure. The
// source keeps retrying; the cluster test (tests/cluster) proves the
// working case against a real API server.
func TestOverlayKubeconfigNotReady(t *testing.T) {
	unreachable := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: "t"}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`
	tests := []struct {
		name    string
		content string // "" leaves the file missing
		want    func(path string) []string
	}{
		{"missing", "", func(p string) []string { return []string{p} }},
		{"does not parse", "clusters: [\n  - {name: [}\n", func(p string) []string { return []string{p} }},
		{"server unreachable", unreachable, func(string) []string { return []string{"127.0.0.1:1", "connection refused"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newVXCluster(t)
			path := filepath.Join(c.dir, "overlay.kubeconfig")
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c.extra = fmt.Sprintf("peers = \"kubernetes\"\nkubeconfig = %q\n", path)
			c.addNode(1, "")
			n := c.nodes[0]
			rs := n.cri(t)
			want := tc.want(path)
			eventually(t, 20*time.Second, "NetworkReady false naming "+strings.Join(want, ", "), func() (bool, string) {
				ok, msg := networkReady(t, rs)
				if ok {
					return false, "NetworkReady true: " + msg
				}
				for _, w := range want {
					if !strings.Contains(msg, w) {
						return false, msg
					}
				}
				return true, msg
			})
			resp, err := rs.Status(context.Background(), &runtimeapi.StatusRequest{})
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			for _, cond := range resp.GetStatus().GetConditions() {
				if cond.Type == runtimeapi.RuntimeReady && !cond.Status {
					t.Errorf("RuntimeReady false: %v", cond)
				}
			}
			if _, e, err := n.crictlRaw("pods"); err != nil {
				t.Errorf("crictl pods with the overlay not ready: %v: %s", err, e)
			}
			if !n.proc.Running() {
				t.Errorf("cribd exited:\n%s", n.log())
			}
		})
	}
}
