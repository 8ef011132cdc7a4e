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
	"github.com/google/nftables"

	"github.com/crib-runtime/crib/internal/testnetns"
	"github.com/crib-runtime/crib/network/subnetfile"
)

const (
	testCluster = "10.244.0.0/16"
	testSubnet  = "10.244.7.0/24"
	testGateway = "10.244.7.1"
)

// env is one throwaway "node": a host netns with its own bridge and
// netfilter, a subnet file and a host-local dir.
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
	// The plugin starts no process: with PATH and CNI_PATH (testutils
	// sets it from PATH) naming an empty directory, no host-local or
	// iptables could be found if it tried. inNS's tools run with the
	// saved PATH.
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv("CNI_PATH", empty)
	e := &env{t: t, host: testnetns.New(t), dir: t.TempDir()}
	e.subnetFile = filepath.Join(e.dir, "subnet.env")
	e.dataDir = filepath.Join(e.dir, "ipam")
	_, cluster, _ := net.ParseCIDR(testCluster)
	_, subnet, _ := net.ParseCIDR(testSubnet)
	if err := subnetfile.Write(e.subnetFile, subnetfile.Subnet{Network: cluster, Subnet: subnet, MTU: 1450, IPMasq: true}); err != nil {
		t.Fatal(err)
	}
	return e
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

// nftTables lists the nftables tables of the node namespace, by family and
// name.
func (e *env) nftTables() []string {
	e.t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(e.host.Fd())))
	if err != nil {
		e.t.Fatal(err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		e.t.Fatalf("list nftables tables: %v", err)
	}
	var out []string
	for _, tb := range tables {
		out = append(out, fmt.Sprintf("%d/%s", tb.Family, tb.Name))
	}
	return out
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

// toolPath is the PATH of the commands tests run themselves (inNS), the
// test process's own being emptied by newEnv.
const toolPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// inNS runs a command in n and returns its output.
func inNS(t *testing.T, n ns.NetNS, args ...string) string {
	t.Helper()
	full := append([]string{"--net=" + n.Path(), "--"}, args...)
	cmd := exec.Command("/usr/bin/nsenter", full...)
	cmd.Env = append(os.Environ(), "PATH="+toolPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %s: %v: %s", strings.Join(full, " "), err, out)
	}
	return string(out)
}

func containerID(t *testing.T, i int) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"), i)
}
