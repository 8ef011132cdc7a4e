package overlay

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeIPTables is the nat table as `iptables -S` shows it: POSTROUTING's
// rules and whether legacyChain exists. Rules are matched and deleted by
// their words, as iptables -D does.
type fakeIPTables struct {
	mu          sync.Mutex
	chain       bool
	postrouting []string // lines of iptables -S POSTROUTING, without the -P line
	calls       int      // ChainExists calls
	// existsErr, deleteErr, if set, fail ChainExists and Delete.
	existsErr, deleteErr error
}

func (f *fakeIPTables) ChainExists(table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.existsErr != nil {
		return false, f.existsErr
	}
	return table == "nat" && chain == legacyChain && f.chain, nil
}

func (f *fakeIPTables) List(table, chain string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{"-P POSTROUTING ACCEPT"}, f.postrouting...), nil
}

func (f *fakeIPTables) Delete(table, chain string, spec ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteErr != nil {
		return f.deleteErr
	}
	for i, r := range f.postrouting {
		if slices.Equal(splitRule(r), append([]string{"-A", chain}, spec...)) {
			f.postrouting = slices.Delete(f.postrouting, i, i+1)
			return nil
		}
	}
	return errors.New("iptables: Bad rule (does a matching rule exist in that chain?)")
}

func (f *fakeIPTables) ClearAndDeleteChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.postrouting {
		if strings.HasSuffix(r, "-j "+chain) {
			return errors.New("iptables: Too many links")
		}
	}
	f.chain = false
	return nil
}

const (
	oldJump7 = `-A POSTROUTING -s 10.244.7.0/24 -m comment --comment "crib-vxlan pods of 10.244.7.0/24" -j CRIB-VXLAN-MASQ`
	oldJump3 = `-A POSTROUTING -s 10.244.3.0/24 -m comment --comment "crib-vxlan pods of 10.244.3.0/24" -j CRIB-VXLAN-MASQ`
	kubeRule = `-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`
)

// TestRemoveLegacyMasq: every jump to the old chain goes, whatever its
// subnet, then the chain; other rules stay; nothing there is nothing done.
func TestRemoveLegacyMasq(t *testing.T) {
	tests := []struct {
		name    string
		ipt     *fakeIPTables
		removed bool
		left    []string
		err     string
	}{
		{name: "nothing there", ipt: &fakeIPTables{postrouting: []string{kubeRule}}, left: []string{kubeRule}},
		{name: "one subnet", ipt: &fakeIPTables{chain: true, postrouting: []string{kubeRule, oldJump7}}, removed: true, left: []string{kubeRule}},
		{name: "two subnets", ipt: &fakeIPTables{chain: true, postrouting: []string{oldJump3, kubeRule, oldJump7}}, removed: true, left: []string{kubeRule}},
		{name: "chain without jump (killed halfway before)", ipt: &fakeIPTables{chain: true, postrouting: []string{kubeRule}}, removed: true, left: []string{kubeRule}},
		{name: "iptables fails", ipt: &fakeIPTables{existsErr: errors.New("exit status 4: another app holds the xtables lock")},
			err: "old masquerade chain CRIB-VXLAN-MASQ: exit status 4"},
		{name: "delete fails", ipt: &fakeIPTables{chain: true, postrouting: []string{oldJump7}, deleteErr: errors.New("exit status 1")},
			left: []string{oldJump7}, err: "old masquerade: delete POSTROUTING -s 10.244.7.0/24 -m comment --comment crib-vxlan pods of 10.244.7.0/24 -j CRIB-VXLAN-MASQ: exit status 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			removed, err := removeLegacyMasq(tc.ipt)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if removed != tc.removed {
				t.Errorf("removed %v, want %v", removed, tc.removed)
			}
			if tc.err == "" && tc.ipt.chain {
				t.Error("the chain is still there")
			}
			if !slices.Equal(tc.ipt.postrouting, tc.left) {
				t.Errorf("POSTROUTING left:\n%s\nwant:\n%s", strings.Join(tc.ipt.postrouting, "\n"), strings.Join(tc.left, "\n"))
			}
		})
	}
}

// TestSplitRule: iptables -S lines split as iptables' own quoting says.
func TestSplitRule(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"-A POSTROUTING -j MASQUERADE", []string{"-A", "POSTROUTING", "-j", "MASQUERADE"}},
		{oldJump7, []string{"-A", "POSTROUTING", "-s", "10.244.7.0/24", "-m", "comment", "--comment", "crib-vxlan pods of 10.244.7.0/24", "-j", "CRIB-VXLAN-MASQ"}},
		{`-A X -m comment --comment "a \"quoted\" \\ word" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", `a "quoted" \ word`, "-j", "Y"}},
		{`-A X -m comment --comment "" -j Y`, []string{"-A", "X", "-m", "comment", "--comment", "", "-j", "Y"}},
		{"  -A  X\t-j Y ", []string{"-A", "X", "-j", "Y"}},
	}
	for _, tc := range tests {
		if got := splitRule(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("splitRule(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}
