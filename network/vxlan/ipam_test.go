package vxlan

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/crib-runtime/crib/network/subnetfile"
)

// ipamConfig is a loaded config over a subnet file and data dir of the
// test's own, node subnet 10.244.7.0/28 (addresses .2 to .14; .1 is the
// gateway).
func ipamConfig(t *testing.T) *config {
	t.Helper()
	dir := t.TempDir()
	sf := filepath.Join(dir, "subnet.env")
	_, cluster, _ := net.ParseCIDR(testCluster)
	_, subnet, _ := net.ParseCIDR("10.244.7.0/28")
	if err := subnetfile.Write(sf, subnetfile.Subnet{Network: cluster, Subnet: subnet, MTU: 1450, IPMasq: true}); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"cniVersion": "1.1.0", "name": "crib-test", "type": "crib-vxlan",
		"subnetFile": sf, "dataDir": filepath.Join(dir, "ipam")})
	c, err := loadConfig(b)
	if err != nil || c.subnetErr != nil {
		t.Fatalf("config: %v, %v", err, c.subnetErr)
	}
	return c
}

// writeAllocation writes an allocation file as the host-local binary does.
func writeAllocation(t *testing.T, c *config, ip, content string) {
	t.Helper()
	dir := filepath.Join(c.DataDir, c.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ip), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestIPAMHostLocalFiles: the in-process allocator reads and writes
// host-local's files, so allocations the host-local binary made before
// (crib-vxlan exec'd it up to issue 17) are kept, found and released.
func TestIPAMHostLocalFiles(t *testing.T) {
	tests := []struct {
		name     string
		existing map[string]string // allocation files before: IP → content
		op       func(c *config) error
		left     []string // allocation files after, sorted
		wantErr  bool
	}{
		{name: "allocate skips the gateway and taken addresses",
			existing: map[string]string{"10.244.7.2": "a\r\neth0"},
			op: func(c *config) error {
				ipc, err := c.allocate("b", "eth0")
				if err == nil && ipc.Address.String() != "10.244.7.3/28" {
					t.Errorf("allocated %s, want 10.244.7.3/28", ipc.Address.String())
				}
				if err == nil && ipc.Gateway.String() != "10.244.7.1" {
					t.Errorf("gateway %s, want 10.244.7.1", ipc.Gateway)
				}
				return err
			},
			left: []string{"10.244.7.2", "10.244.7.3"}},
		{name: "a second allocation of one attachment is refused",
			existing: map[string]string{"10.244.7.5": "a\r\neth0"},
			op:       func(c *config) error { _, err := c.allocate("a", "eth0"); return err },
			left:     []string{"10.244.7.5"}, wantErr: true},
		{name: "release an attachment of the host-local binary",
			existing: map[string]string{"10.244.7.5": "a\r\neth0", "10.244.7.6": "b\r\neth0"},
			op:       func(c *config) error { return c.release("a", "eth0") },
			left:     []string{"10.244.7.6"}},
		{name: "release a pre-v0.7 host-local file (container ID only)",
			existing: map[string]string{"10.244.7.5": "a", "10.244.7.6": "b\r\neth0"},
			op:       func(c *config) error { return c.release("a", "eth0") },
			left:     []string{"10.244.7.6"}},
		{name: "release of an unknown attachment",
			existing: map[string]string{"10.244.7.6": "b\r\neth0"},
			op:       func(c *config) error { return c.release("a", "eth0") },
			left:     []string{"10.244.7.6"}},
		{name: "release with no data dir", op: func(c *config) error { return c.release("a", "eth0") }},
		{name: "check finds the attachment",
			existing: map[string]string{"10.244.7.5": "a\r\neth0"},
			op:       func(c *config) error { return c.checkAllocation("a", "eth0") },
			left:     []string{"10.244.7.5"}},
		{name: "check of an unknown attachment",
			existing: map[string]string{"10.244.7.5": "b\r\neth0"},
			op:       func(c *config) error { return c.checkAllocation("a", "eth0") },
			left:     []string{"10.244.7.5"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ipamConfig(t)
			for ip, content := range tc.existing {
				writeAllocation(t, c, ip, content)
			}
			err := tc.op(c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			allocs, err := c.allocations()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			ents, _ := os.ReadDir(filepath.Join(c.DataDir, c.Name))
			for _, e := range ents {
				if net.ParseIP(e.Name()) != nil {
					got = append(got, e.Name())
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.left) {
				t.Errorf("allocation files %v, want %v", got, tc.left)
			}
			if len(allocs) != len(tc.left) {
				t.Errorf("allocations() lists %v, want %d", allocs, len(tc.left))
			}
		})
	}
}
