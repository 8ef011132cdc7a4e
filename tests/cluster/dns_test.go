//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// corednsImage is CoreDNS built from the module proxy into a test image
// (scripts/build-coredns.sh, tests/images): the binary alone, /coredns.
const corednsImage = "registry.k8s.io/coredns/coredns:v1.15.0"

// clusterDNS is the address kubelet's clusterDNS names (node_test.go).
const clusterDNS = "10.96.0.10"

// corednsApp is CoreDNS as a cluster runs it, in the test namespace so
// that cleanup's namespace deletion takes it: its RBAC, Corefile, one
// replica on the first node and the Service at clusterDNS. No forward
// plugin: nothing outside the cluster is resolved (or reached).
const corednsApp = `apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: crib-test}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: crib-test-coredns}
rules:
- {apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch]}
- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crib-test-coredns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: crib-test-coredns}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: crib-test}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: crib-test}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
    }
---
apiVersion: v1
kind: Pod
metadata: {name: coredns, namespace: crib-test, labels: {k8s-app: kube-dns}}
spec:
  nodeName: %s
  serviceAccountName: coredns
  dnsPolicy: Default
  terminationGracePeriodSeconds: 1
  containers:
  - name: coredns
    image: ` + corednsImage + `
    args: [-conf, /etc/coredns/Corefile]
    ports:
    - {containerPort: 53, protocol: UDP, name: dns}
    - {containerPort: 53, protocol: TCP, name: dns-tcp}
    readinessProbe:
      httpGet: {path: /ready, port: 8181}
      periodSeconds: 1
    volumeMounts:
    - {name: config, mountPath: /etc/coredns, readOnly: true}
  volumes:
  - name: config
    configMap: {name: coredns}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: crib-test}
spec:
  clusterIP: ` + clusterDNS + `
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
`

// hasImage reports whether the test registry serves ref
// ("host/repo:tag").
func hasImage(c *Cluster, ref string) bool {
	_, rest, _ := strings.Cut(ref, "/")
	repo, tag, _ := strings.Cut(rest, ":")
	req, err := http.NewRequest(http.MethodHead, "http://"+c.Registry.Addr+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// testClusterDNS: CoreDNS runs on the first node (reaching the API server
// through the ClusterIP of kubernetes.default, crib-vxlan masquerading it
// onto the underlay) behind the Service at kubelet's clusterDNS; a web pod
// on the last node resolves <service>.<namespace>.svc.cluster.local to the
// Service's ClusterIP with its own resolv.conf (dnsPolicy ClusterFirst).
func testClusterDNS(t *testing.T, c *Cluster, st *state) {
	if !hasImage(c, corednsImage) {
		t.Skipf("the test registry has no %s (scripts/build-coredns.sh, tests/images)", corednsImage)
	}
	first, last := c.Nodes[0], c.Nodes[len(c.Nodes)-1]
	c.apply(t, fmt.Sprintf(corednsApp, first.Name))
	c.waitPodsReady(t, "k8s-app=kube-dns", 1, 120*time.Second)
	want := strings.TrimSpace(c.kubectl(t, "-n", testNS, "get", "service", "echo", "-o", "jsonpath={.spec.clusterIP}"))
	client := webOn(st.web, last.Name)
	if len(client) == 0 {
		t.Fatalf("no web pod on %s", last.Name)
	}
	name := "echo." + testNS + ".svc.cluster.local"
	harness.Eventually(t, 60*time.Second, fmt.Sprintf("%s on %s resolves %s to %s", client[0].Metadata.Name, last.Name, name, want), func() (bool, string) {
		out, _ := c.kubectlRaw(context.Background(), "-n", testNS, "exec", client[0].Metadata.Name, "--", "nslookup", name)
		return strings.Contains(out, "Address: "+want) || strings.Contains(out, "Address 1: "+want), out
	})
	// And a name that does not exist is an error, not an answer.
	out, err := c.kubectlRaw(context.Background(), "-n", testNS, "exec", client[0].Metadata.Name, "--", "nslookup", "nosuch."+testNS+".svc.cluster.local")
	if err == nil && strings.Contains(out, "Address: 10.") {
		t.Errorf("nosuch resolved:\n%s", out)
	}
}
