package overlay

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// stubSource is a PeerSource with the optional HealthReporter and
// SubnetSource answers a test sets.
type stubSource struct {
	mu      sync.Mutex
	health  error
	cidr    string
	why     string
	changes chan struct{}
}

func (s *stubSource) Publish(context.Context, Lease) error    { return nil }
func (s *stubSource) Leases(context.Context) ([]Lease, error) { return nil, nil }
func (s *stubSource) Changes() <-chan struct{}                { return s.changes }
func (s *stubSource) Close() error                            { return nil }
func (s *stubSource) Healthy() error                          { s.mu.Lock(); defer s.mu.Unlock(); return s.health }
func (s *stubSource) NodeSubnet() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cidr, s.why
}
func (s *stubSource) set(health error, cidr, why string) {
	s.mu.Lock()
	s.health, s.cidr, s.why = health, cidr, why
	s.mu.Unlock()
}

// TestManagerReadySources: NetworkReady's reason comes first from an
// unhealthy source, then from a SubnetSource's wait, then from a subnet it
// gave that the cluster network does not hold; a subnet it gives is taken
// as kubelet's would be.
func TestManagerReadySources(t *testing.T) {
	tests := []struct {
		name   string
		health error
		cidr   string
		why    string
		reason string // substring of Ready's message
		subnet string // the subnet the manager ends up with; "" for none
	}{
		{name: "source unhealthy", health: errors.New("kubeconfig /etc/kubernetes/kubelet.conf: no such file"), why: "waiting",
			reason: "overlay: kubeconfig /etc/kubernetes/kubelet.conf: no such file"},
		{name: "waiting for the pod CIDR", why: "waiting for node n1's spec.podCIDR",
			reason: "overlay: node pod CIDR unknown: waiting for node n1's spec.podCIDR"},
		{name: "pod CIDR outside the cluster network", cidr: "10.9.1.0/24",
			reason: "10.9.1.0/24"},
		{name: "pod CIDR known", cidr: "10.244.1.0/24", subnet: "10.244.1.0/24",
			reason: "crib-none0"}, // the next step, the underlay, fails in the test
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &stubSource{changes: make(chan struct{})}
			src.set(tc.health, tc.cidr, tc.why)
			m := newTestManager(t, src)
			eventually(t, "reason", func() (bool, string) {
				m.trigger()
				ok, msg := m.Ready()
				return !ok && strings.Contains(msg, tc.reason), msg
			})
			m.mu.Lock()
			got := ""
			if m.subnet != nil {
				got = m.subnet.String()
			}
			m.mu.Unlock()
			if got != tc.subnet {
				t.Errorf("subnet %q, want %q", got, tc.subnet)
			}
		})
	}
}

// newTestManager is a Manager over src whose reconciles stop at the
// underlay lookup of an interface that does not exist: they touch no
// link, address or route of the host.
func newTestManager(t *testing.T, src PeerSource) *Manager {
	t.Helper()
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	m, err := New(Options{
		NodeName: "n1", ClusterNetwork: cluster, Interface: "crib-none0", VTEPName: "crib-test-vx",
		VNI: 1, Port: 8472, SubnetFile: filepath.Join(t.TempDir(), "subnet.env"), Source: src,
		Resync: 20 * time.Millisecond, Log: logrus.New(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after 5s: %s", what, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
