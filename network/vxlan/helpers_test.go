package vxlan

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/crib-runtime/crib/network/subnetfile"
)

const (
	pluginDir   = "/usr/lib/cni"
	testCluster = "10.244.0.0/16"
	testSubnet  = "10.244.7.0/24"
	testGateway = "10.244.7.1"
)

// env is one throwaway "node": a host netns with its own bridge and
// iptables, a subnet file and a host-local dir.
type env struct {
	t          *testing.T
	host       ns.NetNS
	dir        string
	subnetFile string
	dataDir    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(filepath.Join(pluginDir, "host-local")); err != nil {
		t.Skip("host-local not installed in " + pluginDir)
	}
	// testutils sets CNI_PATH from PATH.
	t.Setenv("PATH", pluginDir+":"+os.Getenv("PATH"))
	t.Setenv("CNI_PATH", pluginDir)
	e := &env{t: t, host: newNS(t), dir: t.TempDir()}
	e.subnetFile = filepath.Join(e.dir, "subnet.env")
	e.dataDir = filepath.Join(e.dir, "ipam")
	_, cluster, _ := net.ParseCIDR(testCluster)
	_, subnet, _ := net.ParseCIDR(testSubnet)
	if err := subnetfile.Write(e.subnetFile, subnetfile.Subnet{Network: cluster, Subnet: subnet, MTU: 1450, IPMasq: true}); err != nil {
		t.Fatal(err)
	}
	return e
}

// newNS makes a network namespace, closed and unmounted at cleanup.
func newNS(t *testing.T) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		if err := testutils.UnmountNS(n); err != nil {
			t.Errorf("unmount netns: %v", err)
		}
	})
	return n
}

// conf is the network config for version v, with extra keys merged in.
func (e *env) conf(v string, extra map[string]any) []byte {
	e.t.Helper()
	c := map[string]any{
		"cniVersion": v,
		"name":       "crib-test",
		"type":       "crib-vxlan",
		"bridge":     "cni0",
		"subnetFile": e.subnetFile,
		"dataDir":    e.dataDir,
	}
	for k, val := range extra {
		c[k] = val
	}
	b, err := json.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// allocations lists host-local's allocation files.
func (e *env) allocations() []string {
	ents, _ := os.ReadDir(filepath.Join(e.dataDir, "crib-test"))
	var out []string
	for _, ent := range ents {
		if net.ParseIP(ent.Name()) != nil {
			out = append(out, ent.Name())
		}
	}
	return out
}

// inNS runs a command in n and returns its output.
func inNS(t *testing.T, n ns.NetNS, args ...string) string {
	t.Helper()
	full := append([]string{"--net=" + n.Path(), "--"}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %s: %v: %s", strings.Join(full, " "), err, out)
	}
	return string(out)
}

func containerID(t *testing.T, i int) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"), i)
}
