package harness

import (
	"fmt"
	"reflect"
	"sort"
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

func TestParseStoreItems(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []StoreItem
		err        bool
	}{
		{"empty file", "", nil, false},
		{"empty list", "[]", []StoreItem{}, false},
		{"container", `[{"id":"c1","names":["app_p_0"],"image":"i","layer":"l1","metadata":"{}"}]`,
			[]StoreItem{{ID: "c1", Names: []string{"app_p_0"}, Layer: "l1"}}, false},
		{"layers", `[{"id":"l1","parent":"l0"},{"id":"l0"}]`,
			[]StoreItem{{ID: "l1", Parent: "l0"}, {ID: "l0"}}, false},
		{"image", `[{"id":"i","layer":"l1","mapped-layers":["l2"]}]`,
			[]StoreItem{{ID: "i", Layer: "l1", MappedLayers: []string{"l2"}}}, false},
		{"torn", `[{"id":"c1"`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStoreItems([]byte(tc.data))
			if (err != nil) != tc.err {
				t.Fatalf("ParseStoreItems: error %v, want error %v", err, tc.err)
			}
			if !tc.err && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseStoreItems: %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestStoreLeftovers(t *testing.T) {
	image := []StoreItem{{ID: "img", Layer: "top", MappedLayers: []string{"mapped"}}}
	base := []StoreItem{{ID: "top", Parent: "bottom"}, {ID: "bottom"}, {ID: "mapped", Parent: "bottom"}}
	for _, tc := range []struct {
		name              string
		ctrs, layers, img []StoreItem
		wantCtrs, wantLay []string
	}{
		{"an image's layers are no leftover", nil, base, image, nil, nil},
		{"a container and its writable layer", []StoreItem{{ID: "c", Names: []string{"app_p_0"}, Layer: "rw"}},
			append(base, StoreItem{ID: "rw", Parent: "top"}), image, []string{"c"}, nil},
		{"a writable layer whose container is gone", nil,
			append(base, StoreItem{ID: "rw", Parent: "top"}), image, nil, []string{"rw"}},
		{"an interrupted pull's layers", nil, []StoreItem{{ID: "l2", Parent: "l1"}, {ID: "l1"}}, nil, nil, []string{"l1", "l2"}},
		{"a removed image's layers", nil, base, nil, nil, []string{"bottom", "mapped", "top"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctrs, layers := StoreLeftovers(tc.ctrs, tc.layers, tc.img)
			if got := sortedKeys(ctrs); !reflect.DeepEqual(got, tc.wantCtrs) {
				t.Errorf("containers: %v, want %v", got, tc.wantCtrs)
			}
			if got := sortedKeys(layers); !reflect.DeepEqual(got, tc.wantLay) {
				t.Errorf("layers: %v, want %v", got, tc.wantLay)
			}
		})
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestStoreMountLayer(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct{ mount, want string }{
		{"/tmp/crib-it-1/root/storage/overlay/" + id + "/merged", id},
		{"/var/lib/crib/storage/overlay/" + id + "/merged", id},
		{"/tmp/crib-it-1/root/storage/overlay", ""},
		{"/tmp/crib-it-1/run/pods/" + id + "/shm", ""},
	} {
		if got := StoreMountLayer(tc.mount); got != tc.want {
			t.Errorf("StoreMountLayer(%q) = %q, want %q", tc.mount, got, tc.want)
		}
	}
}

func TestRunDirIdle(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{".", true, true},
		{"crib.sock", false, true},
		{"cgroups.json", false, true},
		{"pods", true, true},
		{"pods/" + id, true, false},
		{"pods/" + id + "/shim.sock", false, false},
		{"storage", true, true},
		{"runtimes", true, true},
		{"runtimes/crun", true, true},
		{"runtimes/crun/" + id, true, false},
		{"runtimes/stray", false, false},
		{"storage/overlay", true, true},
		{"storage/overlay-layers", true, true},
		{"storage/overlay-layers/mountpoints.json", false, true},
		{"storage/overlay-layers/mountpoints.lock", false, true},
		{"storage/overlay-layers/.tmp-mountpoints.json123", false, false},
		{"storage/overlay/overlay-true", false, true},
		{"storage/overlay/native-diff()-false", false, true},
		{"storage/overlay-containers/" + id, true, false},
		{"storage/userns-rootfs", true, true},
		{"storage/userns-rootfs/" + id, true, false},
		{"stray", false, false},
	} {
		if got := RunDirIdle(tc.rel, tc.isDir); got != tc.want {
			t.Errorf("RunDirIdle(%q, dir %v) = %v, want %v", tc.rel, tc.isDir, got, tc.want)
		}
	}
}
