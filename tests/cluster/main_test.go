//go:build cluster

// Package cluster runs crib as the nodes of a real Kubernetes cluster on
// one machine, and proves that what a cluster asks of a node runtime
// works through crib: an API server, controller-manager and scheduler
// (one multi-call Kubernetes binary, scripts/build-kube.sh) on an underlay
// bridge the test creates, and three nodes, each a network namespace on
// that bridge with its own cribd (VXLAN overlay on, crib-vxlan as the CNI
// plugin), kubelet and kube-proxy. One cluster serves every scenario, in
// order (TestCluster's subtests):
//
//   - the nodes register and turn Ready with pod CIDRs the
//     controller-manager allocated;
//   - the scheduler spreads a 6-replica Deployment over the three nodes;
//   - every pod reaches every other across nodes, by ping and TCP, and
//     the traffic crosses the underlay as VXLAN VNI 1 on UDP 8472
//     (captured on a node's underlay link);
//   - a Node whose flannel annotations are garbage is skipped by every
//     crib node with one warning, traffic still flows, and once mended
//     its route, neighbour and FDB entries appear (and go with the Node);
//   - a ClusterIP Service answers a pod on a node without a backend
//     (kube-proxy's rules, the overlay underneath);
//   - cluster DNS: CoreDNS (built from the module proxy into a test image)
//     behind kubelet's clusterDNS resolves <service>.<namespace>.svc.cluster.local
//     for a pod on another node;
//   - kubectl exec (with and without a TTY), logs -f, attach and
//     port-forward, API server → kubelet → cribd's streaming server;
//   - a pod whose RuntimeClass names a crib runtime handler runs its
//     container through that runtime (runc; crun where crun can run),
//     with logs and exec;
//   - SIGKILL of a node's cribd under traffic: its pods keep serving, the
//     Node stays Ready, the restarted cribd takes its pods back;
//   - kubectl drain moves a node's pods and traffic still flows;
//   - a deleted Node's route, neighbour and FDB entries go from the other
//     nodes (crib's overlay takes its peers from the Node objects);
//   - a node joining the running cluster is reached both ways;
//   - a flannel node (kubelet on containerd 2.4.2, flanneld with the kube
//     subnet manager) joins, and its pods and crib's reach each other both
//     ways: crib's overlay against flannel itself, not our reading of it;
//   - at the end everything the test started is stopped and removed, and
//     the test fails naming what is left (pods, cgroups, mounts, network
//     namespaces, links, processes).
//
// To run it:
//
//	make build && scripts/build-cri-tools.sh && scripts/build-kube.sh
//	go test -tags cluster -count=1 -v ./tests/cluster/...   (or: make test-cluster)
//
// Binaries: cribd, crib-shim, crib-pause, crib-vxlan from $CRIB_BIN_DIR
// (default <repo>/bin); crictl from $CRICTL; containerd, its shim and runc
// from $CRIB_CONTAINERD_DIR, flanneld from $FLANNELD (default the tool
// cache's; FlannelNode skips without them); the Kubernetes binaries from
// $KUBE_DIR (default $CRIB_TOOLS_DIR/kube-v1.37.2: kube-apiserver,
// kube-controller-manager, kube-scheduler, kube-proxy, kubectl, kubelet
// and etcd, links to one multi-call binary). CRIB_CLUSTER_KEEP=1 keeps
// the temp dir (configs, certificates, every daemon's log).
//
// TestBenchCluster (bench_test.go, build tags cluster and bench: make
// bench-cluster) runs on the same harness: crib nodes and containerd +
// flanneld nodes in one cluster, measured side by side.
package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/crib-runtime/crib/tests/harness"
)

// kubeVersion is the Kubernetes release scripts/build-kube.sh builds.
const kubeVersion = "v1.37.2"

// kubeDir holds the Kubernetes personalities.
func kubeDir() string {
	if d := os.Getenv("KUBE_DIR"); d != "" {
		return d
	}
	return filepath.Join(harness.ToolsDir(), "kube-"+kubeVersion)
}

// kubeBin is the path of one Kubernetes personality (kube-apiserver, …).
func kubeBin(name string) string { return filepath.Join(kubeDir(), name) }

func requireEnv() error {
	if err := harness.RequireEnv(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(harness.BinDir(), "crib-vxlan")); err != nil {
		return fmt.Errorf("%w (run make build)", err)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl", "kubelet"} {
		if _, err := os.Stat(kubeBin(b)); err != nil {
			return fmt.Errorf("%w (run scripts/build-kube.sh, or set KUBE_DIR)", err)
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	if err := requireEnv(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: cannot run: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
