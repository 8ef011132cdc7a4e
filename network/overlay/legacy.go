package overlay

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// legacyChain is the nat chain in which crib-vxlan up to issue 17 put the
// masquerade, each ADD checking it with iptables, with a jump from
// POSTROUTING per node subnet:
//
//	-A POSTROUTING -s 10.244.7.0/24 -m comment --comment "crib-vxlan pods of 10.244.7.0/24" -j CRIB-VXLAN-MASQ
//	-A CRIB-VXLAN-MASQ -d 10.244.0.0/16 -j RETURN
//	-A CRIB-VXLAN-MASQ -d 224.0.0.0/4 -j RETURN
//	-A CRIB-VXLAN-MASQ -j MASQUERADE
//
// The manager's nftables table does the same now; a node upgraded from
// such a crib still has these, and the manager removes them once.
const legacyChain = "CRIB-VXLAN-MASQ"

// legacyIPTables is what the removal needs of *iptables.IPTables: the seam
// its unit tests replace.
type legacyIPTables interface {
	ChainExists(table, chain string) (bool, error)
	List(table, chain string) ([]string, error)
	Delete(table, chain string, rulespec ...string) error
	ClearAndDeleteChain(table, chain string) error
}

// errNoIPTables says there is no iptables command: then no crib before
// this one can have left rules through it either.
var errNoIPTables = errors.New("no iptables command")

// newLegacyIPTables is the real seam. It runs iptables (the node's
// variant, legacy or nft), as the old rules were written with it: a few
// processes, once per cribd start.
func newLegacyIPTables() (legacyIPTables, error) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, errNoIPTables
	}
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	return ipt, nil
}

// removeLegacyMasq removes every POSTROUTING jump to legacyChain (of any
// node subnet) and then the chain, and reports whether there was anything
// to remove. It is idempotent: killed halfway, the next call finishes.
func removeLegacyMasq(ipt legacyIPTables) (removed bool, err error) {
	ok, err := ipt.ChainExists("nat", legacyChain)
	if err != nil {
		return false, fmt.Errorf("old masquerade chain %s: %w", legacyChain, err)
	}
	if !ok {
		return false, nil
	}
	rules, err := ipt.List("nat", "POSTROUTING")
	if err != nil {
		return false, fmt.Errorf("old masquerade: list POSTROUTING: %w", err)
	}
	for _, r := range rules {
		spec, ok := legacyJump(r)
		if !ok {
			continue
		}
		// By the rule's own words, never by number: other agents
		// (kube-proxy, CNI plugins) edit POSTROUTING meanwhile.
		if err := ipt.Delete("nat", "POSTROUTING", spec...); err != nil {
			return false, fmt.Errorf("old masquerade: delete POSTROUTING %s: %w", strings.Join(spec, " "), err)
		}
	}
	if err := ipt.ClearAndDeleteChain("nat", legacyChain); err != nil {
		return false, fmt.Errorf("old masquerade: delete chain %s: %w", legacyChain, err)
	}
	return true, nil
}

// legacyJump returns the rule spec of a POSTROUTING line of `iptables -S`
// that jumps to legacyChain, without its "-A POSTROUTING".
func legacyJump(line string) ([]string, bool) {
	f := splitRule(line)
	if len(f) < 4 || f[0] != "-A" || f[1] != "POSTROUTING" || f[len(f)-2] != "-j" || f[len(f)-1] != legacyChain {
		return nil, false
	}
	return f[2:], true
}

// splitRule splits a line of `iptables -S` into words as a shell would:
// iptables quotes a word with spaces (a comment) in double quotes and
// escapes a double quote or backslash in it with a backslash.
func splitRule(line string) []string {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quoted bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
