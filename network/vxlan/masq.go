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
	jump := []string{"-s", subnet.String(), "-m", "comment", "--comment", "crib-vxlan pods of " + subnet.String(), "-j", masqChain}
	if err := utils.InsertUnique(ipt, "nat", "POSTROUTING", false, jump); err != nil {
		return fmt.Errorf("masquerade: POSTROUTING: %w", err)
	}
	return nil
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
