package overlay

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// fakeNFT is an in-memory nftables of IPv4 tables, chains and rules. Add*
// and Del* queue as the real Conn does; Flush applies the queue whole or,
// on the first invalid message, not at all, as the kernel's transaction.
type fakeNFT struct {
	mu      sync.Mutex
	tables  map[string]bool
	chains  []*nftables.Chain
	rules   map[string][]*nftables.Rule // by chain name
	queue   []func(*fakeNFT) error
	flushes int
	// listErr and flushErr, if set, are returned by the lists and Flush.
	listErr, flushErr error
}

func newFakeNFT() *fakeNFT {
	return &fakeNFT{tables: map[string]bool{}, rules: map[string][]*nftables.Rule{}}
}

func (f *fakeNFT) ListTablesOfFamily(fam nftables.TableFamily) ([]*nftables.Table, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []*nftables.Table
	for name := range f.tables {
		out = append(out, &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4})
	}
	return out, nil
}

func (f *fakeNFT) ListChainsOfTableFamily(fam nftables.TableFamily) ([]*nftables.Chain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	return append([]*nftables.Chain(nil), f.chains...), nil
}

func (f *fakeNFT) GetRules(t *nftables.Table, c *nftables.Chain) ([]*nftables.Rule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	return append([]*nftables.Rule(nil), f.rules[t.Name+"/"+c.Name]...), nil
}

func (f *fakeNFT) AddTable(t *nftables.Table) *nftables.Table {
	f.push(func(f *fakeNFT) error { f.tables[t.Name] = true; return nil })
	return t
}

func (f *fakeNFT) DelTable(t *nftables.Table) {
	f.push(func(f *fakeNFT) error {
		if !f.tables[t.Name] {
			return errors.New("no such file or directory")
		}
		delete(f.tables, t.Name)
		var keep []*nftables.Chain
		for _, c := range f.chains {
			if c.Table.Name == t.Name {
				delete(f.rules, t.Name+"/"+c.Name)
			} else {
				keep = append(keep, c)
			}
		}
		f.chains = keep
		return nil
	})
}

func (f *fakeNFT) AddChain(c *nftables.Chain) *nftables.Chain {
	f.push(func(f *fakeNFT) error {
		if !f.tables[c.Table.Name] {
			return errors.New("no such table")
		}
		f.chains = append(f.chains, c)
		return nil
	})
	return c
}

func (f *fakeNFT) AddRule(r *nftables.Rule) *nftables.Rule {
	f.push(func(f *fakeNFT) error {
		k := r.Table.Name + "/" + r.Chain.Name
		f.rules[k] = append(f.rules[k], r)
		return nil
	})
	return r
}

func (f *fakeNFT) push(op func(*fakeNFT) error) {
	f.mu.Lock()
	f.queue = append(f.queue, op)
	f.mu.Unlock()
}

func (f *fakeNFT) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queue
	f.queue = nil
	if len(q) == 0 {
		return nil
	}
	f.flushes++
	if f.flushErr != nil {
		return f.flushErr
	}
	// Apply to a copy; keep it only if every message applies.
	c := &fakeNFT{tables: map[string]bool{}, rules: map[string][]*nftables.Rule{}, chains: append([]*nftables.Chain(nil), f.chains...)}
	for k, v := range f.tables {
		c.tables[k] = v
	}
	for k, v := range f.rules {
		c.rules[k] = append([]*nftables.Rule(nil), v...)
	}
	for _, op := range q {
		if err := op(c); err != nil {
			return err
		}
	}
	f.tables, f.chains, f.rules = c.tables, c.chains, c.rules
	return nil
}

// comments are the comments of the rules of crib's chain, in order.
func (f *fakeNFT) comments() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.rules[masqTable+"/"+masqChain] {
		c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		out = append(out, c)
	}
	return out
}

func cidr(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// install writes spec's table into f as ensureMasq would.
func install(t *testing.T, f *fakeNFT, spec masqSpec) {
	t.Helper()
	if _, err := ensureMasq(f, spec); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureMasq: the table is written when it is missing or differs in
// any way, as one transaction, and left alone when it is right.
func TestEnsureMasq(t *testing.T) {
	spec := masqSpec{subnet: cidr(t, "10.244.7.0/24"), cluster: cidr(t, "10.244.0.0/16")}
	tests := []struct {
		name    string
		setup   func(t *testing.T, f *fakeNFT)
		changed bool
		err     string // substring; "" for none
	}{
		{name: "no table", setup: func(*testing.T, *fakeNFT) {}, changed: true},
		{name: "right already", setup: func(t *testing.T, f *fakeNFT) { install(t, f, spec) }},
		{name: "earlier node subnet", changed: true, setup: func(t *testing.T, f *fakeNFT) {
			install(t, f, masqSpec{subnet: cidr(t, "10.244.3.0/24"), cluster: spec.cluster})
		}},
		{name: "other cluster network", changed: true, setup: func(t *testing.T, f *fakeNFT) {
			install(t, f, masqSpec{subnet: spec.subnet, cluster: cidr(t, "10.0.0.0/8")})
		}},
		{name: "empty table", changed: true, setup: func(t *testing.T, f *fakeNFT) { f.tables[masqTable] = true }},
		{name: "a rule gone", changed: true, setup: func(t *testing.T, f *fakeNFT) {
			install(t, f, spec)
			k := masqTable + "/" + masqChain
			f.rules[k] = f.rules[k][:2]
		}},
		{name: "a rule added", changed: true, setup: func(t *testing.T, f *fakeNFT) {
			install(t, f, spec)
			k := masqTable + "/" + masqChain
			f.rules[k] = append(f.rules[k], &nftables.Rule{Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
		}},
		{name: "another chain in the table", changed: true, setup: func(t *testing.T, f *fakeNFT) {
			install(t, f, spec)
			f.chains = append(f.chains, &nftables.Chain{Name: "extra", Table: ourTable()})
		}},
		{name: "chain of another priority", changed: true, setup: func(t *testing.T, f *fakeNFT) {
			install(t, f, spec)
			f.chains[0].Priority = nftables.ChainPriorityRef(*nftables.ChainPriorityNATDest)
		}},
		{name: "rules of an older crib", changed: true, setup: func(t *testing.T, f *fakeNFT) {
			install(t, f, spec)
			for _, r := range f.rules[masqTable+"/"+masqChain] {
				c, _ := userdata.GetString(r.UserData, userdata.TypeComment)
				r.UserData = userdata.AppendString(nil, userdata.TypeComment, strings.Replace(c, masqVersion, "v0", 1))
			}
		}},
		{name: "list fails", err: "masquerade: list tables: netlink: permission denied", setup: func(_ *testing.T, f *fakeNFT) {
			f.listErr = errors.New("netlink: permission denied")
		}},
		{name: "write fails", err: "masquerade: write table ip crib-vxlan: no nf_tables", setup: func(_ *testing.T, f *fakeNFT) {
			f.flushErr = errors.New("no nf_tables")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNFT()
			tc.setup(t, f)
			before := f.flushes
			changed, err := ensureMasq(f, spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.changed {
				t.Errorf("changed %v, want %v", changed, tc.changed)
			}
			if n := f.flushes - before; tc.changed && n != 1 || !tc.changed && n != 0 {
				t.Errorf("%d transactions, want %d", n, map[bool]int{true: 1}[tc.changed])
			}
			want := []string{
				"crib-vxlan v1: pods of 10.244.7.0/24 to the cluster network 10.244.0.0/16 keep their address",
				"crib-vxlan v1: pods of 10.244.7.0/24 to multicast keep their address",
				"crib-vxlan v1: pods of 10.244.7.0/24 leaving the cluster network take the node's address",
			}
			if got := f.comments(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(f.chains) != 1 || !sameBaseChain(f.chains[0], ourChain()) {
				t.Errorf("chains %v, want crib's postrouting only", f.chains)
			}
			if ok, err := masqIs(f, spec); err != nil || !ok {
				t.Errorf("after ensureMasq, masqIs = %v, %v", ok, err)
			}
		})
	}
}

// TestRemoveMasq: the table goes if it is there; no table is no error and
// no transaction.
func TestRemoveMasq(t *testing.T) {
	spec := masqSpec{subnet: cidr(t, "10.244.7.0/24"), cluster: cidr(t, "10.244.0.0/16")}
	for _, present := range []bool{true, false} {
		f := newFakeNFT()
		if present {
			install(t, f, spec)
		}
		before := f.flushes
		removed, err := removeMasq(f)
		if err != nil {
			t.Fatalf("present=%v: %v", present, err)
		}
		if removed != present || f.flushes-before != map[bool]int{true: 1}[present] {
			t.Errorf("present=%v: removed %v after %d transactions", present, removed, f.flushes-before)
		}
		if len(f.tables) != 0 || len(f.chains) != 0 {
			t.Errorf("present=%v: left tables %v, chains %v", present, f.tables, f.chains)
		}
	}
}

// TestMasqExprs: each rule matches the pod subnet by source, the first two
// return for their destination, the last masquerades: "ip saddr S ip daddr
// D return" as nft itself encodes it (payload, bitwise mask, cmp).
func TestMasqExprs(t *testing.T) {
	spec := masqSpec{subnet: cidr(t, "10.244.7.0/24"), cluster: cidr(t, "10.244.0.0/16")}
	rules := spec.rules()
	tests := []struct {
		rule      masqRule
		daddr     []byte // destination compared; nil for none
		daddrMask []byte
		last      expr.Any
	}{
		{rules[0], []byte{10, 244, 0, 0}, []byte{255, 255, 0, 0}, &expr.Verdict{Kind: expr.VerdictReturn}},
		{rules[1], []byte{224, 0, 0, 0}, []byte{240, 0, 0, 0}, &expr.Verdict{Kind: expr.VerdictReturn}},
		{rules[2], nil, nil, &expr.Masq{}},
	}
	for i, tc := range tests {
		ex := tc.rule.exprs(spec.subnet)
		checkPrefix := func(at int, offset uint32, addr, mask []byte) {
			t.Helper()
			p, ok1 := ex[at].(*expr.Payload)
			b, ok2 := ex[at+1].(*expr.Bitwise)
			c, ok3 := ex[at+2].(*expr.Cmp)
			if !ok1 || !ok2 || !ok3 || p.Offset != offset || p.Len != 4 || p.Base != expr.PayloadBaseNetworkHeader ||
				!bytes.Equal(b.Mask, mask) || !bytes.Equal(b.Xor, make([]byte, 4)) || !bytes.Equal(c.Data, addr) || c.Op != expr.CmpOpEq {
				t.Errorf("rule %d: exprs %d..%d are not a match of %v/%v at offset %d: %#v %#v %#v", i, at, at+2, addr, mask, offset, ex[at], ex[at+1], ex[at+2])
			}
		}
		want := 4
		if tc.daddr != nil {
			want = 7
		}
		if len(ex) != want {
			t.Fatalf("rule %d: %d exprs, want %d", i, len(ex), want)
		}
		checkPrefix(0, 12, []byte{10, 244, 7, 0}, []byte{255, 255, 255, 0})
		if tc.daddr != nil {
			checkPrefix(3, 16, tc.daddr, tc.daddrMask)
		}
		switch w := tc.last.(type) {
		case *expr.Verdict:
			if v, ok := ex[len(ex)-1].(*expr.Verdict); !ok || v.Kind != w.Kind {
				t.Errorf("rule %d ends with %#v, want return", i, ex[len(ex)-1])
			}
		case *expr.Masq:
			if _, ok := ex[len(ex)-1].(*expr.Masq); !ok {
				t.Errorf("rule %d ends with %#v, want masquerade", i, ex[len(ex)-1])
			}
		}
	}
}
