package config

import (
	"strings"
	"testing"
)

// TestOverlayDefaults: the overlay is off by default with flannel's values.
func TestOverlayDefaults(t *testing.T) {
	o := Default().Network.Overlay
	if o.Enabled || o.ClusterNetwork != "10.244.0.0/16" || o.VNI != 1 || o.Port != 8472 || o.VTEPName != "flannel.1" || o.BridgeName != "cni0" {
		t.Errorf("defaults: %+v", o)
	}
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestOverlayParse: the section parses and each bad value names its key.
func TestOverlayParse(t *testing.T) {
	cfg := Default()
	if err := Parse([]byte("[network.overlay]\nenabled = true\nnode_subnet = \"10.244.3.0/24\"\ninterface = \"eth0\"\nnode_name = \"n1\"\n"), &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.Network.Overlay.Enabled || cfg.Network.Overlay.NodeSubnet != "10.244.3.0/24" {
		t.Errorf("parsed %+v", cfg.Network.Overlay)
	}
	for body, key := range map[string]string{
		`cluster_network = "nope"`:        "network.overlay.cluster_network",
		`node_subnet = "10.9.0.0/24"`:     "network.overlay.node_subnet",
		`node_subnet = "10.244.1.0/31"`:   "network.overlay.node_subnet",
		`vni = 0`:                         "network.overlay.vni",
		`port = 70000`:                    "network.overlay.port",
		`vtep_name = "a-very-long-name0"`: "network.overlay.vtep_name",
		`lease_dir = "rel"`:               "network.overlay.lease_dir",
		`subnet_file = "rel"`:             "network.overlay.subnet_file",
	} {
		cfg := Default()
		err := Parse([]byte("[network.overlay]\n"+body+"\n"), &cfg)
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %v, want one naming %s", body, err, key)
		}
	}
}

// TestOverlayPeers: peers chooses the lease directory (default) or the
// Kubernetes Node objects, whose fields are checked with errors naming the
// key.
func TestOverlayPeers(t *testing.T) {
	const kube = "peers = \"kubernetes\"\nkubeconfig = \"/etc/kubernetes/kubelet.conf\"\n"
	tests := []struct {
		name string
		body string
		key  string // the key the error names; "" for no error
	}{
		{"default is the lease dir", "", ""},
		{"dir", `peers = "dir"`, ""},
		{"kubernetes", kube, ""},
		{"kubernetes with a node name", kube + `node_name = "node-1.example.com"`, ""},
		{"unknown source", `peers = "etcd"`, "network.overlay.peers"},
		{"kubernetes without kubeconfig", `peers = "kubernetes"`, "network.overlay.kubeconfig"},
		{"relative kubeconfig", "peers = \"kubernetes\"\nkubeconfig = \"kubelet.conf\"", "network.overlay.kubeconfig"},
		{"kubernetes with a node subnet", kube + `node_subnet = "10.244.3.0/24"`, "network.overlay.node_subnet"},
		{"upper-case node name", kube + `node_name = "Node1"`, "network.overlay.node_name"},
		{"node name with underscore", kube + `node_name = "node_1"`, "network.overlay.node_name"},
		{"kubeconfig ignored for dir", `kubeconfig = "rel"`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			err := Parse([]byte("[network.overlay]\n"+tc.body+"\n"), &cfg)
			switch {
			case tc.key == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.key != "" && (err == nil || !strings.Contains(err.Error(), tc.key)):
				t.Fatalf("error %v, want one naming %s", err, tc.key)
			}
		})
	}
	cfg := Default()
	if err := Parse([]byte("[network.overlay]\n"+kube), &cfg); err != nil {
		t.Fatal(err)
	}
	if o := cfg.Network.Overlay; o.Peers != PeersKubernetes || o.Kubeconfig != "/etc/kubernetes/kubelet.conf" {
		t.Errorf("parsed %+v", o)
	}
	if p := Default().Network.Overlay.Peers; p != PeersDir {
		t.Errorf("default peers %q, want %q", p, PeersDir)
	}
}
