package vxlan

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/crib-runtime/crib/internal/testnetns"
	"github.com/crib-runtime/crib/network/subnetfile"
)

// TestAddCheckDel runs ADD, ADD again, CHECK, DEL and DEL again for each spec
// version, in throwaway namespaces, as the bridge plugin's tests do.
func TestAddCheckDel(t *testing.T) {
	for _, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			e := newEnv(t)
			pod := testnetns.New(t)
			args := &skel.CmdArgs{ContainerID: containerID(t, 0), Netns: pod.Path(), IfName: "eth0", StdinData: e.conf(v, nil)}

			var res *types100.Result
			err := e.host.Do(func(ns.NetNS) error {
				r, _, err := testutils.CmdAddWithArgs(args, func() error { return CmdAdd(args) })
				if err != nil {
					return err
				}
				res, err = types100.NewResultFromResult(r)
				return err
			})
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if len(res.IPs) != 1 || !strings.HasPrefix(res.IPs[0].Address.IP.String(), "10.244.7.") || res.IPs[0].Gateway.String() != testGateway {
				t.Fatalf("ADD result IPs %v: want one 10.244.7.x with gateway %s", res.IPs, testGateway)
			}
			podIP := res.IPs[0].Address.IP.String()

			link := inNS(t, pod, "ip", "-o", "link", "show", "eth0")
			if !strings.Contains(link, "mtu 1450") {
				t.Errorf("pod eth0: %s: want mtu 1450", link)
			}
			if r := inNS(t, pod, "ip", "route", "show", "default"); !strings.Contains(r, "via "+testGateway+" dev eth0") {
				t.Errorf("pod default route %q: want via %s", r, testGateway)
			}
			if a := inNS(t, e.host, "ip", "-o", "addr", "show", "cni0"); !strings.Contains(a, "inet "+testGateway+"/24") {
				t.Errorf("cni0: %s: want %s/24", a, testGateway)
			}
			// The masquerade is the node's (cribd's overlay manager):
			// ADD leaves netfilter as it found it.
			if tables := e.nftTables(); len(tables) != 0 {
				t.Errorf("after ADD the node has nftables tables %v, want none", tables)
			}

			// ADD again: same address, nothing new allocated.
			err = e.host.Do(func(ns.NetNS) error {
				r, _, err := testutils.CmdAddWithArgs(args, func() error { return CmdAdd(args) })
				if err != nil {
					return err
				}
				again, err := types100.NewResultFromResult(r)
				if err != nil {
					return err
				}
				if got := again.IPs[0].Address.IP.String(); got != podIP {
					t.Errorf("second ADD gave %s, first %s", got, podIP)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("second ADD: %v", err)
			}
			if n := len(e.allocations()); n != 1 {
				t.Errorf("after two ADDs: %d allocations, want 1", n)
			}

			if testutils.SpecVersionHasCHECK(v) {
				prev, err := res.GetAsVersion(v)
				if err != nil {
					t.Fatal(err)
				}
				var raw map[string]any
				b, _ := json.Marshal(prev)
				_ = json.Unmarshal(b, &raw)
				cargs := *args
				cargs.StdinData = e.conf(v, map[string]any{"prevResult": raw})
				err = e.host.Do(func(ns.NetNS) error {
					return testutils.CmdCheckWithArgs(&cargs, func() error { return CmdCheck(&cargs) })
				})
				if err != nil {
					t.Errorf("CHECK: %v", err)
				}
			}

			for i := 0; i < 2; i++ {
				err = e.host.Do(func(ns.NetNS) error {
					return testutils.CmdDelWithArgs(args, func() error { return CmdDel(args) })
				})
				if err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
			}
			if got := e.allocations(); len(got) != 0 {
				t.Errorf("after DEL: allocations %v", got)
			}
			if out := inNS(t, pod, "ip", "-o", "link"); strings.Contains(out, "eth0") {
				t.Errorf("after DEL: pod still has eth0: %s", out)
			}
		})
	}
}

// TestDelUnknown: DEL of a container never added succeeds, with or without
// a namespace and with no subnet file.
func TestDelUnknown(t *testing.T) {
	e := newEnv(t)
	if err := os.Remove(e.subnetFile); err != nil {
		t.Fatal(err)
	}
	for _, netns := range []string{"", "/nonexistent/netns"} {
		args := &skel.CmdArgs{ContainerID: "unknown", Netns: netns, IfName: "eth0", StdinData: e.conf("1.1.0", nil)}
		err := e.host.Do(func(ns.NetNS) error {
			return testutils.CmdDelWithArgs(args, func() error { return CmdDel(args) })
		})
		if err != nil {
			t.Errorf("DEL unknown (netns %q): %v", netns, err)
		}
	}
}

// TestStatus: STATUS is fine with a subnet file and says "plugin not
// available" (50) without one; ADD then says "try again later" (11).
func TestStatus(t *testing.T) {
	e := newEnv(t)
	args := &skel.CmdArgs{StdinData: e.conf("1.1.0", nil)}
	if err := CmdStatus(args); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	if err := os.Remove(e.subnetFile); err != nil {
		t.Fatal(err)
	}
	var terr *types.Error
	if err := CmdStatus(args); !errors.As(err, &terr) || terr.Code != types.ErrPluginNotAvailable {
		t.Errorf("STATUS without subnet file: %v, want CNI error %d", err, types.ErrPluginNotAvailable)
	}
	pod := testnetns.New(t)
	aargs := &skel.CmdArgs{ContainerID: "c", Netns: pod.Path(), IfName: "eth0", StdinData: e.conf("1.1.0", nil)}
	err := e.host.Do(func(ns.NetNS) error {
		_, _, err := testutils.CmdAddWithArgs(aargs, func() error { return CmdAdd(aargs) })
		return err
	})
	if !errors.As(err, &terr) || terr.Code != types.ErrTryAgainLater {
		t.Errorf("ADD without subnet file: %v, want CNI error %d", err, types.ErrTryAgainLater)
	}
}

// TestGC: GC releases the allocations not named valid and keeps the others.
func TestGC(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := 0; i < 3; i++ {
		pod := testnetns.New(t)
		args := &skel.CmdArgs{ContainerID: containerID(t, i), Netns: pod.Path(), IfName: "eth0", StdinData: e.conf("1.1.0", nil)}
		err := e.host.Do(func(ns.NetNS) error {
			_, _, err := testutils.CmdAddWithArgs(args, func() error { return CmdAdd(args) })
			return err
		})
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
		ids = append(ids, args.ContainerID)
	}
	valid := []map[string]string{{"containerID": ids[1], "ifname": "eth0"}}
	args := &skel.CmdArgs{StdinData: e.conf("1.1.0", map[string]any{"cni.dev/valid-attachments": valid})}
	if err := e.host.Do(func(ns.NetNS) error { return CmdGC(args) }); err != nil {
		t.Fatalf("GC: %v", err)
	}
	c, err := loadConfig(e.conf("1.1.0", nil))
	if err != nil {
		t.Fatal(err)
	}
	left, err := c.allocations()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ContainerID != ids[1] {
		t.Errorf("after GC: %v, want only %s", left, ids[1])
	}
}

// TestSubnetChange: after the node subnet changes, the next ADD leaves only
// the new gateway on the bridge (the old one and its route go), and DEL
// releases the addresses of both subnets.
func TestSubnetChange(t *testing.T) {
	e := newEnv(t)
	add := func(i int) *skel.CmdArgs {
		t.Helper()
		pod := testnetns.New(t)
		args := &skel.CmdArgs{ContainerID: containerID(t, i), Netns: pod.Path(), IfName: "eth0", StdinData: e.conf("1.1.0", nil)}
		err := e.host.Do(func(ns.NetNS) error {
			_, _, err := testutils.CmdAddWithArgs(args, func() error { return CmdAdd(args) })
			return err
		})
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
		return args
	}
	first := add(0)
	_, cluster, _ := net.ParseCIDR(testCluster)
	_, next, _ := net.ParseCIDR("10.244.8.0/24")
	if err := subnetfile.Write(e.subnetFile, subnetfile.Subnet{Network: cluster, Subnet: next, MTU: 1450, IPMasq: true}); err != nil {
		t.Fatal(err)
	}
	second := add(1)

	addrs := inNS(t, e.host, "ip", "-o", "-4", "addr", "show", "cni0")
	if !strings.Contains(addrs, "inet 10.244.8.1/24") || strings.Contains(addrs, testGateway) || strings.Count(addrs, "inet ") != 1 {
		t.Errorf("cni0 after the subnet change:\n%s\nwant only 10.244.8.1/24", addrs)
	}
	if r := inNS(t, e.host, "ip", "route", "show", "dev", "cni0"); strings.Contains(r, testSubnet) {
		t.Errorf("routes on cni0 after the subnet change:\n%s\nwant none to %s", r, testSubnet)
	}
	for _, args := range []*skel.CmdArgs{first, second} {
		err := e.host.Do(func(ns.NetNS) error {
			return testutils.CmdDelWithArgs(args, func() error { return CmdDel(args) })
		})
		if err != nil {
			t.Errorf("DEL %s: %v", args.ContainerID, err)
		}
	}
	if got := e.allocations(); len(got) != 0 {
		t.Errorf("after DEL: allocations %v", got)
	}
}
