package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/config"
	"github.com/crib-runtime/crib/network/overlay"
)

// TestPeerSource: peers picks the source; a Kubernetes one whose
// kubeconfig is missing still starts, unhealthy with the file named, so
// cribd serves with NetworkReady false and the reason.
func TestPeerSource(t *testing.T) {
	log := logrus.New()
	o := config.Default().Network.Overlay
	o.LeaseDir = t.TempDir()
	src, err := peerSource(o, "n1", log)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	if _, ok := src.(*overlay.DirSource); !ok {
		t.Errorf("peers = %q: source %T, want *overlay.DirSource", o.Peers, src)
	}

	o.Peers, o.Kubeconfig = config.PeersKubernetes, filepath.Join(t.TempDir(), "kubelet.conf")
	src, err = peerSource(o, "n1", log)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	h, ok := src.(overlay.HealthReporter)
	if !ok {
		t.Fatalf("peers = %q: source %T reports no health", o.Peers, src)
	}
	deadline := time.Now().Add(5 * time.Second)
	for err := h.Healthy(); err == nil || !strings.Contains(err.Error(), o.Kubeconfig); err = h.Healthy() {
		if time.Now().After(deadline) {
			t.Fatalf("health %v, want an error naming %s", err, o.Kubeconfig)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := peerSource(o, "Not_A_Node", log); err == nil || !strings.Contains(err.Error(), "network.overlay.node_name") {
		t.Errorf("bad node name: %v, want an error naming network.overlay.node_name", err)
	}
}
