package harness

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestPodChains(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules string
		want  []string
	}{
		{"none", "-P PREROUTING ACCEPT\n-N CNI-HOSTPORT-DNAT\n", nil},
		{"rule in the chain names the subnet", "-N CNI-abc\n-A CNI-abc -d 10.88.7.0/24 -j ACCEPT\n", []string{"CNI-abc"}},
		{"jumped to from a rule naming the subnet", "-N CNI-abc\n-A POSTROUTING -s 10.88.7.5/32 -j CNI-abc\n-A CNI-abc -j MASQUERADE\n", []string{"CNI-abc"}},
		{"other subnet", "-N CNI-abc\n-A POSTROUTING -s 10.88.8.5/32 -j CNI-abc\n", nil},
		{"hostport chains stay", "-N CNI-HOSTPORT-SETMARK\n-A CNI-HOSTPORT-SETMARK -s 10.88.7.0/24 -j MARK\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PodChains(tc.rules, "10.88.7."); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("PodChains: %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLeaks(t *testing.T) {
	before := Snapshot{KindMount: {"/a /": "mount /a"}}
	after := Snapshot{KindMount: {"/a /": "mount /a", "/b /": "mount /b"}, KindNetNS: {"crib-x": "netns crib-x"}}
	got := Leaks(before, after)
	want := []string{KindMount + ": mount /b", KindNetNS + ": netns crib-x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Leaks: %v, want %v", got, want)
	}
	if got := Leaks(after, before); len(got) != 0 {
		t.Errorf("Leaks of a shrinking host: %v, want none", got)
	}
}

func TestPerProcessNetwork(t *testing.T) {
	n := PerProcessNetwork("cribx", 50, 40)
	if !strings.HasPrefix(n.Bridge, "cribx") || n.Subnet != n.Prefix+"0/24" || !strings.HasPrefix(n.Prefix, "10.88.") {
		t.Errorf("PerProcessNetwork: %+v", n)
	}
	var octet int
	if _, err := fmt.Sscan(strings.TrimPrefix(n.Bridge, "cribx"), &octet); err != nil || octet < 50 || octet >= 90 {
		t.Errorf("PerProcessNetwork: bridge %s outside cribx50..89", n.Bridge)
	}
}
