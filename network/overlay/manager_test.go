package overlay

import (
	"context"
	"errors"
	"fmt"
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
// link, address or route of the host, and program the masquerade into
// fakes.
func newTestManager(t *testing.T, src PeerSource) *Manager {
	t.Helper()
	return newFakeManager(t, src, newFakeNFT(), &fakeIPTables{})
}

// newFakeManager is newTestManager with the given fakes of nftables and
// iptables.
func newFakeManager(t *testing.T, src PeerSource, nft *fakeNFT, ipt *fakeIPTables) *Manager {
	t.Helper()
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	m, err := newManager(Options{
		NodeName: "n1", ClusterNetwork: cluster, Interface: "crib-none0", VTEPName: "crib-test-vx",
		VNI: 1, Port: 8472, SubnetFile: filepath.Join(t.TempDir(), "subnet.env"), Source: src,
		Resync: 20 * time.Millisecond, Log: logrus.New(),
	}, seams{
		nft:      func() (nftConn, error) { return nft, nil },
		iptables: func() (legacyIPTables, error) { return ipt, nil },
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

// TestManagerMasquerade: once the subnet is known the manager programs its
// masquerade and removes an older crib's iptables rules, once; a new
// subnet replaces the rules of the old; a table someone deleted is back at
// the next resync.
func TestManagerMasquerade(t *testing.T) {
	nft := newFakeNFT()
	ipt := &fakeIPTables{chain: true, postrouting: []string{kubeRule, oldJump3}}
	src := &stubSource{changes: make(chan struct{})}
	m := newFakeManager(t, src, nft, ipt)
	masqOf := func(subnet string) func() (bool, string) {
		return func() (bool, string) {
			got := strings.Join(nft.comments(), "\n")
			return strings.Count(got, "pods of "+subnet) == 3 && strings.Count(got, "pods of ") == 3, got
		}
	}
	if err := m.SetPodCIDR("10.244.1.0/24"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "masquerade of 10.244.1.0/24", masqOf("10.244.1.0/24"))
	eventually(t, "old iptables masquerade removed", func() (bool, string) {
		ipt.mu.Lock()
		defer ipt.mu.Unlock()
		return !ipt.chain && len(ipt.postrouting) == 1, strings.Join(ipt.postrouting, "\n")
	})

	if err := m.SetPodCIDR("10.244.2.0/24"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "masquerade of 10.244.2.0/24 only", masqOf("10.244.2.0/24"))

	if _, err := removeMasq(nft); err != nil {
		t.Fatal(err)
	}
	eventually(t, "masquerade restored by the resync", masqOf("10.244.2.0/24"))

	ipt.mu.Lock()
	calls := ipt.calls
	ipt.mu.Unlock()
	if calls != 1 {
		t.Errorf("the old iptables masquerade was looked for %d times, want once", calls)
	}
}

// TestManagerMasqueradeFailures: a masquerade that cannot be written keeps
// NetworkReady false with the reason, and is retried; an old iptables
// masquerade that cannot be removed is retried but keeps nobody waiting.
func TestManagerMasqueradeFailures(t *testing.T) {
	tests := []struct {
		name   string
		nftErr error
		iptErr error
		reason string // Ready's message while the error lasts
	}{
		{name: "nftables refuses", nftErr: errors.New("operation not permitted"),
			reason: "overlay: masquerade: write table ip crib-vxlan: operation not permitted"},
		{name: "iptables refuses", iptErr: errors.New("exit status 4"),
			reason: "crib-none0"}, // the next step, the underlay, fails in the test
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nft := newFakeNFT()
			nft.flushErr = tc.nftErr
			ipt := &fakeIPTables{chain: true, postrouting: []string{oldJump3}, existsErr: tc.iptErr}
			src := &stubSource{changes: make(chan struct{})}
			src.set(nil, "10.244.1.0/24", "")
			m := newFakeManager(t, src, nft, ipt)
			eventually(t, "reason", func() (bool, string) {
				ok, msg := m.Ready()
				return !ok && strings.Contains(msg, tc.reason), msg
			})
			if tc.iptErr != nil {
				eventually(t, "retries", func() (bool, string) {
					ipt.mu.Lock()
					defer ipt.mu.Unlock()
					return ipt.calls > 2, fmt.Sprint(ipt.calls)
				})
			}
			nft.mu.Lock()
			nft.flushErr = nil
			nft.mu.Unlock()
			ipt.mu.Lock()
			ipt.existsErr = nil
			ipt.mu.Unlock()
			eventually(t, "masquerade and cleanup after the error", func() (bool, string) {
				ipt.mu.Lock()
				gone := !ipt.chain
				ipt.mu.Unlock()
				got := strings.Join(nft.comments(), "\n")
				return gone && strings.Count(got, "pods of 10.244.1.0/24") == 3, got
			})
			if ok, msg := m.Ready(); ok || !strings.Contains(msg, "crib-none0") {
				t.Errorf("Ready after the errors: %v %q, want the underlay's error", ok, msg)
			}
		})
	}
}
