//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/crib-runtime/crib/network/overlay"
	"github.com/crib-runtime/crib/network/subnetfile"
)

// cniNode is a throwaway "node" for driving CNI plugins through libcni with
// no cribd: a network namespace the plugins run in (their bridge, veths and
// iptables rules land there, never in the host's), a directory for the
// conflist, subnet file, host-local data and libcni's cache.
type cniNode struct {
	t      testing.TB
	nsName string
	netns  ns.NetNS
	dir    string
	cni    *libcni.CNIConfig
	pods   []string // pod namespaces made by newPodNS
}

func newCNINode(t testing.TB) *cniNode {
	t.Helper()
	id := randomHex(3)
	n := &cniNode{t: t, nsName: "cvxl-" + id, dir: "/tmp/cvxl-" + id}
	t.Cleanup(n.cleanup)
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "add", n.nsName)
	run(t, "ip", "-n", n.nsName, "link", "set", "lo", "up")
	netns, err := ns.GetNS("/var/run/netns/" + n.nsName)
	if err != nil {
		t.Fatal(err)
	}
	n.netns = netns
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{binDir(), stdCNIDir}, filepath.Join(n.dir, "cache"), nil)
	return n
}

// cleanup deletes the pod namespaces, the node namespace (its bridge, veths
// and iptables rules go with it) and the directory.
func (n *cniNode) cleanup() {
	for _, p := range n.pods {
		exec.Command("ip", "netns", "delete", p).Run()
	}
	if n.netns != nil {
		n.netns.Close()
	}
	exec.Command("ip", "netns", "delete", n.nsName).Run()
	if err := os.RemoveAll(n.dir); err != nil {
		n.t.Logf("cleanup: %v", err)
	}
}

// newPodNS makes a pod network namespace, deleted at cleanup if the test
// does not delete it first (deletePodNS).
func (n *cniNode) newPodNS() string {
	name := fmt.Sprintf("%s-p%d", n.nsName, len(n.pods))
	run(n.t, "ip", "netns", "add", name)
	n.pods = append(n.pods, name)
	return name
}

func (n *cniNode) deletePodNS(name string) {
	run(n.t, "ip", "netns", "delete", name)
}

// vxlanList writes the subnet file for subnet and crib-vxlan's default
// conflist (crib-vxlan + portmap, as cribd writes it), and loads it.
func (n *cniNode) vxlanList(subnet string) *libcni.NetworkConfigList {
	n.t.Helper()
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	_, sn, _ := net.ParseCIDR(subnet)
	sf := filepath.Join(n.dir, "subnet.env")
	if err := subnetfile.Write(sf, subnetfile.Subnet{Network: cluster, Subnet: sn, MTU: 1450, IPMasq: true}); err != nil {
		n.t.Fatal(err)
	}
	confDir := filepath.Join(n.dir, "net.d")
	if _, err := overlay.WriteDefaultConflist(confDir, overlay.ConflistOptions{
		Name: "crib", Bridge: "cni0", SubnetFile: sf, DataDir: filepath.Join(n.dir, "ipam"),
	}); err != nil {
		n.t.Fatal(err)
	}
	list, err := libcni.ConfListFromFile(filepath.Join(confDir, overlay.DefaultConflistName))
	if err != nil {
		n.t.Fatal(err)
	}
	return list
}

// list parses a conflist.
func (n *cniNode) list(body string) *libcni.NetworkConfigList {
	n.t.Helper()
	list, err := libcni.ConfListFromBytes([]byte(body))
	if err != nil {
		n.t.Fatalf("conflist: %v\n%s", err, body)
	}
	return list
}

// add runs the list's ADD for the pod namespace podNS through libcni, from
// the node's namespace: the plugin processes are forked from a thread in
// it and so run there.
func (n *cniNode) add(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error) {
	var res types.Result
	err := n.netns.Do(func(ns.NetNS) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		res, err = n.cni.AddNetworkList(ctx, list, rt)
		return err
	})
	return res, err
}

// del runs the list's DEL through libcni from the node's namespace.
func (n *cniNode) del(list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return n.netns.Do(func(ns.NetNS) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return n.cni.DelNetworkList(ctx, list, rt)
	})
}

// rt is the runtime config of one attachment: eth0 in podNS.
func rtFor(id, podNS string, caps map[string]any) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: "/var/run/netns/" + podNS, IfName: "eth0", CapabilityArgs: caps}
}

// in runs a command in the node's namespace and returns its output.
func (n *cniNode) in(args ...string) string {
	n.t.Helper()
	return run(n.t, append([]string{"ip", "netns", "exec", n.nsName}, args...)...)
}

var iptCounters = regexp.MustCompile(`\[\d+:\d+\]`)

// iptablesState is iptables-save of a namespace without comments and
// counters: equal states hold the same chains and rules.
func iptablesState(t testing.TB, inNS []string) string {
	t.Helper()
	out := run(t, append(inNS, "iptables-save")...)
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, iptCounters.ReplaceAllString(l, ""))
	}
	return strings.Join(keep, "\n")
}

// ipAllocations lists host-local's allocation files (one per IP) in dir.
func ipAllocations(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if net.ParseIP(e.Name()) != nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestVXLANLibcniCycles drives crib-vxlan outside cribd, through libcni
// with cribd's default conflist (crib-vxlan + portmap, a host port mapped on
// every attachment): 200 ADD/DEL cycles, each in a fresh pod namespace,
// leave no allocation, no veth, no cached result and no iptables rule
// beyond what the first ADD made for the node (portmap's chains). The
// masquerade is cribd's, not the plugin's: no ADD writes one.
func TestVXLANLibcniCycles(t *testing.T) {
	n := newCNINode(t)
	list := n.vxlanList("10.244.9.0/24")
	caps := map[string]any{"portMappings": []map[string]any{{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}}}
	const cycles = 200
	var baseline string
	began := time.Now()
	for i := 0; i < cycles; i++ {
		pod := n.newPodNS()
		rt := rtFor(fmt.Sprintf("cvxl-cycle-%d", i), pod, caps)
		res, err := n.add(list, rt)
		if err != nil {
			t.Fatalf("cycle %d: ADD: %v", i, err)
		}
		if i == 0 {
			t.Logf("first ADD result: %s", res)
			if o := n.in("iptables", "-t", "nat", "-S"); !strings.Contains(o, "--dport 18080") || strings.Contains(o, "CRIB-VXLAN-MASQ") {
				t.Fatalf("after the first ADD, no port mapping, or a masquerade chain of crib-vxlan's:\n%s", o)
			}
			if o := run(t, "ip", "-n", pod, "-o", "addr", "show", "eth0"); !strings.Contains(o, "inet 10.244.9.") {
				t.Fatalf("pod eth0: %s: want a 10.244.9.x address", o)
			}
		}
		if err := n.del(list, rt); err != nil {
			t.Fatalf("cycle %d: DEL: %v", i, err)
		}
		if i == 0 {
			baseline = iptablesState(t, []string{"ip", "netns", "exec", n.nsName})
		}
		n.deletePodNS(pod)
	}
	t.Logf("%d ADD/DEL cycles through libcni in %s", cycles, time.Since(began).Round(time.Millisecond))

	if a := ipAllocations(filepath.Join(n.dir, "ipam", "crib")); len(a) != 0 {
		t.Errorf("allocations left after %d cycles: %v", cycles, a)
	}
	if o := n.in("ip", "-o", "link", "show", "type", "veth"); strings.TrimSpace(o) != "" {
		t.Errorf("veths left after %d cycles:\n%s", cycles, o)
	}
	if ents, _ := os.ReadDir(filepath.Join(n.dir, "cache", "results")); len(ents) != 0 {
		t.Errorf("%d cached results left after %d cycles", len(ents), cycles)
	}
	if got := iptablesState(t, []string{"ip", "netns", "exec", n.nsName}); got != baseline {
		t.Errorf("iptables after %d cycles differ from after the first:\nfirst:\n%s\nlast:\n%s", cycles, baseline, got)
	}
	if strings.Contains(baseline, "18080") {
		t.Errorf("a port mapping rule outlived its DEL:\n%s", baseline)
	}
}

// TestVXLANLibcniVerbs drives every verb of crib-vxlan through libcni at
// spec 1.1.0, outside cribd: STATUS says "not available" (50) with no
// subnet file and succeeds with one; ADD, CHECK; GC releases the address of
// an attachment libcni's cache does not know (added through another cache,
// as by a runtime that lost its state) and keeps the valid one; DEL.
func TestVXLANLibcniVerbs(t *testing.T) {
	n := newCNINode(t)
	list := n.list(fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "crib", "plugins": [
		{"type": "crib-vxlan", "bridge": "cni0", "subnetFile": %q, "dataDir": %q}]}`,
		filepath.Join(n.dir, "subnet.env"), filepath.Join(n.dir, "ipam")))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	err := n.cni.GetStatusNetworkList(ctx, list)
	var terr *types.Error
	if !errors.As(err, &terr) || terr.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS without a subnet file: %v, want CNI error %d", err, types.ErrPluginNotAvailable)
	}
	n.vxlanList("10.244.9.0/24") // writes the subnet file
	if err := n.cni.GetStatusNetworkList(ctx, list); err != nil {
		t.Fatalf("STATUS: %v", err)
	}

	keep := rtFor("cvxl-keep", n.newPodNS(), nil)
	if _, err := n.add(list, keep); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := n.netns.Do(func(ns.NetNS) error { return n.cni.CheckNetworkList(ctx, list, keep) }); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	other := libcni.NewCNIConfigWithCacheDir([]string{binDir(), stdCNIDir}, filepath.Join(n.dir, "other-cache"), nil)
	orphan := rtFor("cvxl-orphan", n.newPodNS(), nil)
	if err := n.netns.Do(func(ns.NetNS) error { _, err := other.AddNetworkList(ctx, list, orphan); return err }); err != nil {
		t.Fatalf("ADD through another cache: %v", err)
	}
	if a := ipAllocations(filepath.Join(n.dir, "ipam", "crib")); len(a) != 2 {
		t.Fatalf("allocations after two ADDs: %v", a)
	}
	gc := &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: keep.ContainerID, IfName: keep.IfName}}}
	if err := n.netns.Do(func(ns.NetNS) error { return n.cni.GCNetworkList(ctx, list, gc) }); err != nil {
		t.Fatalf("GC: %v", err)
	}
	a := ipAllocations(filepath.Join(n.dir, "ipam", "crib"))
	if len(a) != 1 {
		t.Fatalf("allocations after GC: %v, want only the valid attachment's", a)
	}
	if b, _ := os.ReadFile(filepath.Join(n.dir, "ipam", "crib", a[0])); !strings.HasPrefix(string(b), keep.ContainerID) {
		t.Errorf("GC kept %s of %q, want the valid attachment's", a[0], b)
	}
	if err := n.netns.Do(func(ns.NetNS) error { return n.cni.CheckNetworkList(ctx, list, keep) }); err != nil {
		t.Errorf("CHECK after GC: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := n.del(list, keep); err != nil {
			t.Fatalf("DEL #%d: %v", i+1, err)
		}
	}
	if a := ipAllocations(filepath.Join(n.dir, "ipam", "crib")); len(a) != 0 {
		t.Errorf("allocations after DEL: %v", a)
	}
}
