package vxlan

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/containernetworking/plugins/pkg/utils"
	"github.com/coreos/go-iptables/iptables"
)

// masqChain holds the masquerade rules of one node subnet; POSTROUTING
// jumps to it for packets from the subnet.
const masqChain = "CRIB-VXLAN-MASQ"

// ensureMasq makes pod traffic leaving the cluster network go out with the
// node's address, and leaves pod-to-pod traffic (any node) and multicast
// alone. The rules are per node, not per pod, so DEL has nothing to remove.
func ensureMasq(subnet, cluster *net.IPNet) error {
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return fmt.Errorf("masquerade: %w", err)
	}
	if err := utils.EnsureChain(ipt, "nat", masqChain); err != nil {
		return fmt.Errorf("masquerade: chain %s: %w", masqChain, err)
	}
	want := [][]string{
		{"-d", cluster.String(), "-j", "RETURN"},
		{"-d", "224.0.0.0/4", "-j", "RETURN"},
		{"-j", "MASQUERADE"},
	}
	if ok, err := chainIs(ipt, masqChain, want); err != nil {
		return fmt.Errorf("masquerade: %w", err)
	} else if !ok {
		if err := ipt.ClearChain("nat", masqChain); err != nil {
			return fmt.Errorf("masquerade: clear %s: %w", masqChain, err)
		}
		for _, r := range want {
			if err := ipt.Append("nat", masqChain, r...); err != nil {
				return fmt.Errorf("masquerade: %s: %w", masqChain, err)
			}
		}
	}
	if err := ensureJump(ipt, subnet); err != nil {
		return fmt.Errorf("masquerade: POSTROUTING: %w", err)
	}
	return nil
}

// jumpSpec is POSTROUTING's rule sending subnet's packets to masqChain.
func jumpSpec(subnet string) []string {
	return []string{"-s", subnet, "-m", "comment", "--comment", "crib-vxlan pods of " + subnet, "-j", masqChain}
}

// ensureJump makes POSTROUTING jump to masqChain for subnet's packets and
// removes its jumps for other subnets: those of an earlier node subnet (the
// pod CIDR changed while the node ran). One listing serves both.
func ensureJump(ipt *iptables.IPTables, subnet *net.IPNet) error {
	rules, err := ipt.List("nat", "POSTROUTING")
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	have := false
	for _, r := range rules {
		f := strings.Fields(r)
		if len(f) < 4 || f[0] != "-A" || f[len(f)-2] != "-j" || f[len(f)-1] != masqChain || f[2] != "-s" {
			continue
		}
		if f[3] == subnet.String() {
			have = true
			continue
		}
		// Deleting by spec matches only a rule crib-vxlan wrote.
		if err := utils.DeleteRule(ipt, "nat", "POSTROUTING", jumpSpec(f[3])...); err != nil {
			return fmt.Errorf("remove stale jump for %s: %w", f[3], err)
		}
	}
	if have {
		return nil
	}
	return utils.InsertUnique(ipt, "nat", "POSTROUTING", false, jumpSpec(subnet.String()))
}

// chainIs reports whether chain holds exactly the rules want, in order.
func chainIs(ipt *iptables.IPTables, chain string, want [][]string) (bool, error) {
	rules, err := ipt.List("nat", chain)
	if err != nil {
		return false, fmt.Errorf("list %s: %w", chain, err)
	}
	var got []string
	for _, r := range rules {
		if strings.HasPrefix(r, "-A ") {
			got = append(got, strings.TrimPrefix(r, "-A "+chain+" "))
		}
	}
	if len(got) != len(want) {
		return false, nil
	}
	for i, w := range want {
		if !slices.Equal(strings.Fields(got[i]), w) {
			return false, nil
		}
	}
	return true, nil
}
