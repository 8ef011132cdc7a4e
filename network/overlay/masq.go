package overlay

import (
	"fmt"
	"net"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// The node's masquerade lives in an nftables table of crib's own,
//
//	table ip crib-vxlan {
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr 10.244.7.0/24 ip daddr 10.244.0.0/16 return
//			ip saddr 10.244.7.0/24 ip daddr 224.0.0.0/4 return
//			ip saddr 10.244.7.0/24 masquerade
//		}
//	}
//
// so pods going out of the cluster network leave with the node's address,
// and pod to pod traffic (any node) and multicast keep theirs, much as
// flanneld's own rules do. It is programmed over netlink: no iptables process, no xtables
// lock. Nobody else writes this table, so each rule is recognised by the
// comment crib put on it, which names the subnets and the rules' version.
const (
	masqTable = "crib-vxlan"
	masqChain = "postrouting"
	// masqVersion is in every rule's comment: a later crib that changes
	// the rules bumps it, and the table of an older one is replaced.
	masqVersion = "v1"
)

// multicast is 224.0.0.0/4, never masqueraded.
func multicast() *net.IPNet {
	return &net.IPNet{IP: net.IPv4(224, 0, 0, 0).To4(), Mask: net.CIDRMask(4, 32)}
}

// nftConn is what the masquerade needs of *nftables.Conn: the seam its unit
// tests replace. Add*, Del* queue messages; Flush sends them as one
// transaction, which the kernel applies whole or not at all.
type nftConn interface {
	ListTablesOfFamily(family nftables.TableFamily) ([]*nftables.Table, error)
	ListChainsOfTableFamily(family nftables.TableFamily) ([]*nftables.Chain, error)
	GetRules(t *nftables.Table, c *nftables.Chain) ([]*nftables.Rule, error)
	AddTable(t *nftables.Table) *nftables.Table
	DelTable(t *nftables.Table)
	AddChain(c *nftables.Chain) *nftables.Chain
	AddRule(r *nftables.Rule) *nftables.Rule
	Flush() error
}

// newNFTConn is the real seam: a netlink connection in the calling
// thread's network namespace, opened per call and closed after it.
func newNFTConn() (nftConn, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// masqSpec is the masquerade one node needs.
type masqSpec struct {
	// subnet is the node's pod subnet, cluster the network of every node's.
	subnet, cluster *net.IPNet
}

// masqRule is one rule of the chain: a destination not to masquerade (or
// nil for the final masquerade), and its comment.
type masqRule struct {
	except  *net.IPNet
	comment string
}

// rules are the chain's rules in order.
func (s masqSpec) rules() []masqRule {
	pods := s.subnet.String()
	return []masqRule{
		{except: s.cluster, comment: fmt.Sprintf("crib-vxlan %s: pods of %s to the cluster network %s keep their address", masqVersion, pods, s.cluster)},
		{except: multicast(), comment: fmt.Sprintf("crib-vxlan %s: pods of %s to multicast keep their address", masqVersion, pods)},
		{comment: fmt.Sprintf("crib-vxlan %s: pods of %s leaving the cluster network take the node's address", masqVersion, pods)},
	}
}

// ourTable is crib's table, ip crib-vxlan.
func ourTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyIPv4, Name: masqTable}
}

// ourChain is the table's one chain: nat, hooked at postrouting with
// priority srcnat (100), policy accept.
func ourChain() *nftables.Chain {
	return &nftables.Chain{
		Name: masqChain, Table: ourTable(), Type: nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookRef(*nftables.ChainHookPostrouting),
		Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityNATSource),
	}
}

// ensureMasq makes crib's table hold exactly spec's masquerade and reports
// whether it had to change it. A table that differs in any way (missing,
// another node subnet, an older crib's rules, a chain or rule someone
// added) is replaced in one transaction: delete and re-create, so no
// packet ever sees a half-written chain, and a crash leaves either the old
// table or the new one, which the next resync checks again.
func ensureMasq(conn nftConn, spec masqSpec) (changed bool, err error) {
	ok, err := masqIs(conn, spec)
	if err != nil {
		return false, fmt.Errorf("masquerade: %w", err)
	}
	if ok {
		return false, nil
	}
	// Adding a table that exists is no error, deleting one that does not
	// is: add, delete, add makes the delete always valid.
	table, chain := ourTable(), ourChain()
	conn.AddTable(table)
	conn.DelTable(table)
	conn.AddTable(table)
	conn.AddChain(chain)
	for _, r := range spec.rules() {
		conn.AddRule(&nftables.Rule{
			Table: table, Chain: chain, Exprs: r.exprs(spec.subnet),
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment),
		})
	}
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("masquerade: write table ip %s: %w", masqTable, err)
	}
	return true, nil
}

// masqIs reports whether crib's table holds exactly spec's chain and rules.
func masqIs(conn nftConn, spec masqSpec) (bool, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == masqTable }) {
		return false, nil
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("list chains: %w", err)
	}
	var ours []*nftables.Chain
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == masqTable {
			ours = append(ours, c)
		}
	}
	if len(ours) != 1 || !sameBaseChain(ours[0], ourChain()) {
		return false, nil
	}
	rules, err := conn.GetRules(ourTable(), ourChain())
	if err != nil {
		return false, fmt.Errorf("list rules of %s: %w", masqChain, err)
	}
	want := spec.rules()
	if len(rules) != len(want) {
		return false, nil
	}
	for i, r := range rules {
		got, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		if got != want[i].comment || len(r.Exprs) != len(want[i].exprs(spec.subnet)) {
			return false, nil
		}
	}
	return true, nil
}

// sameBaseChain compares what makes a base chain: name, type, hook and
// priority.
func sameBaseChain(a, b *nftables.Chain) bool {
	return a.Name == b.Name && a.Type == b.Type &&
		a.Hooknum != nil && *a.Hooknum == *b.Hooknum &&
		a.Priority != nil && *a.Priority == *b.Priority
}

// removeMasq deletes crib's table, if there is one, and reports whether
// there was.
func removeMasq(conn nftConn) (removed bool, err error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("masquerade: list tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == masqTable }) {
		return false, nil
	}
	conn.DelTable(ourTable())
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("masquerade: delete table ip %s: %w", masqTable, err)
	}
	return true, nil
}

// exprs is the rule's match and action: ip saddr in subnet, then either
// ip daddr in except and return, or masquerade.
func (r masqRule) exprs(subnet *net.IPNet) []expr.Any {
	// IPv4 header offsets of the source and destination addresses.
	const saddr, daddr = 12, 16
	out := prefixMatch(saddr, subnet)
	if r.except != nil {
		out = append(out, prefixMatch(daddr, r.except)...)
		return append(out, &expr.Verdict{Kind: expr.VerdictReturn})
	}
	return append(out, &expr.Masq{})
}

// prefixMatch loads the IPv4 address at offset of the network header and
// compares it, masked, with n: what nft writes for "ip saddr n".
func prefixMatch(offset uint32, n *net.IPNet) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(net.IP(n.Mask).To4()), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: n.IP.Mask(n.Mask).To4()},
	}
}
