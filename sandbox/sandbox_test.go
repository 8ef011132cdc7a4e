package sandbox

import (
	"errors"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

func TestRenderResolvConf(t *testing.T) {
	tests := []struct {
		name string
		dns  state.DNS
		want string
	}{
		{"empty", state.DNS{}, ""},
		{"servers only", state.DNS{Servers: []string{"10.96.0.10", "8.8.8.8"}}, "nameserver 10.96.0.10\nnameserver 8.8.8.8\n"},
		{"all", state.DNS{
			Servers:  []string{"10.96.0.10"},
			Searches: []string{"default.svc.cluster.local", "svc.cluster.local"},
			Options:  []string{"ndots:5", "edns0"},
		}, "search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5 edns0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(renderResolvConf(tc.dns)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRenderHosts(t *testing.T) {
	got := string(renderHosts("web-1", []string{"10.88.0.5"}))
	if !strings.HasPrefix(got, "127.0.0.1\tlocalhost\n") || !strings.Contains(got, "10.88.0.5\tweb-1\n") {
		t.Errorf("hosts file %q", got)
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{64}$`)
	a, _ := newID()
	b, _ := newID()
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Errorf("ids %q %q", a, b)
	}
}

func TestClampOOMScoreAdj(t *testing.T) {
	tests := []struct{ want, floor, got int }{
		{-998, 0, 0},
		{-998, -1000, -998},
		{500, 0, 500},
		{-998, -998, -998},
	}
	for _, tc := range tests {
		if got := clampOOMScoreAdj(tc.want, tc.floor); got != tc.got {
			t.Errorf("clamp(%d, %d) = %d, want %d", tc.want, tc.floor, got, tc.got)
		}
	}
}

func TestFilter(t *testing.T) {
	yes, no := true, false
	v := View{Sandbox: state.Sandbox{ID: "abcdef", Labels: map[string]string{"app": "web", "tier": "1"}}, Ready: true}
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"empty", Filter{}, true},
		{"full id", Filter{IDPrefix: "abcdef"}, true},
		{"prefix", Filter{IDPrefix: "abc"}, true},
		{"other id", Filter{IDPrefix: "abd"}, false},
		{"ready", Filter{Ready: &yes}, true},
		{"notready", Filter{Ready: &no}, false},
		{"label match", Filter{Labels: map[string]string{"app": "web"}}, true},
		{"label value differs", Filter{Labels: map[string]string{"app": "db"}}, false},
		{"label missing", Filter{Labels: map[string]string{"zone": "a"}}, false},
	}
	for _, tc := range tests {
		if got := tc.f.Match(v); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    9876      54    3    0    0     0          0         0     4321      32    1    0    0     0       0          0
`
	tests := []struct {
		name    string
		data    string
		want    []InterfaceStats
		wantErr bool
	}{
		{"lo left out", netDev, []InterfaceStats{{Name: "eth0", RxBytes: 9876, RxErrors: 3, TxBytes: 4321, TxErrors: 1}}, false},
		{"headers only", strings.Join(strings.SplitN(netDev, "\n", 3)[:2], "\n"), nil, false},
		{"short line", "eth0: 1 2 3\n", nil, true},
		{"not a number", "eth0: x 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNetDev([]byte(tc.data))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestMergeResources(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	i64 := func(v int64) *int64 { return &v }
	created := &state.Resources{CPUPeriod: 100000, CPUQuota: 20000, CPUShares: 512, MemoryLimit: 128 << 20, MemorySwapLimit: 128 << 20, OOMScoreAdj: 900}
	tests := []struct {
		name string
		have *state.Resources
		res  *specs.LinuxResources
		want *state.Resources
	}{
		{"nothing to merge", created, nil, created},
		{
			"update replaces what it sets, keeps the rest",
			created,
			&specs.LinuxResources{
				CPU:    &specs.LinuxCPU{Quota: i64(50000)},
				Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)},
			},
			&state.Resources{CPUPeriod: 100000, CPUQuota: 50000, CPUShares: 512, MemoryLimit: 64 << 20, MemorySwapLimit: 64 << 20, OOMScoreAdj: 900},
		},
		{
			"from nothing (a record from an older crib)",
			nil,
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2), Cpus: "0-1"}, Unified: map[string]string{"memory.high": "1G"}},
			&state.Resources{CPUShares: 2, CpusetCpus: "0-1", Unified: map[string]string{"memory.high": "1G"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeResources(tc.have, tc.res); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPodSysctls(t *testing.T) {
	userns := []state.IDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	tests := []struct {
		name     string
		rec      state.Sandbox
		defaults bool
		want     map[string]string
	}{
		{"defaults", state.Sandbox{}, true, map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647"}},
		{"the pod's own win", state.Sandbox{Sysctls: map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmax": "1"}}, true, map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "80", "net.ipv4.ping_group_range": "0 2147483647", "kernel.shmmax": "1"}},
		{"turned off", state.Sandbox{Sysctls: map[string]string{"kernel.shmmax": "1"}}, false, map[string]string{"kernel.shmmax": "1"}},
		{"host network", state.Sandbox{NetworkMode: state.NamespaceNode}, true, nil},
		{"own user namespace: no ping range", state.Sandbox{UIDMappings: userns, GIDMappings: userns}, true, map[string]string{
			"net.ipv4.ip_unprivileged_port_start": "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := maps.Clone(tc.rec.Sysctls)
			got := podSysctls(&tc.rec, tc.defaults)
			if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if !maps.Equal(tc.rec.Sysctls, before) {
				t.Errorf("the record's sysctls changed to %v", tc.rec.Sysctls)
			}
		})
	}
}

func TestPauseSpecAppArmor(t *testing.T) {
	for _, prof := range []string{"", "crib-default"} {
		rec := &state.Sandbox{ID: "p", AppArmorProfile: prof}
		spec := pauseSpec(rec, pauseConfig{Rootfs: "/r", Args: []string{"/crib-pause"}, Sysctls: map[string]string{"a": "b"}})
		if spec.Process.ApparmorProfile != prof || spec.Linux.Sysctl["a"] != "b" {
			t.Errorf("profile %q sysctls %v, want %q and the given sysctls", spec.Process.ApparmorProfile, spec.Linux.Sysctl, prof)
		}
	}
}

func TestSysctlError(t *testing.T) {
	sysctls := map[string]string{"net.ipv4.conf.all.forwarding": "1", "net.ipv4.conf.all": "x", "net.core.somaxconn": "abc"}
	tests := []struct {
		name     string
		err      error
		wantKind error // nil: unchanged
		want     string
	}{
		{"missing sysctl", errors.New("create pause: open sysctl net.core.nope file: openat2 /proc/sys/net/core/nope: no such file or directory"), nil, ""},
		{"missing known key", errors.New("create pause: open sysctl net.ipv4.conf.all.forwarding file: no such file or directory"), errdefs.ErrFailedPrecondition, `"net.ipv4.conf.all.forwarding"`},
		{"refused value", errors.New("create pause: failed to write sysctl net.core.somaxconn = \"abc\": write /proc/sys/net/core/somaxconn: invalid argument"), errdefs.ErrInvalidArgument, `linux.sysctls["net.core.somaxconn"]`},
		{"not about sysctls", errors.New("create pause: mount: permission denied"), nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sysctlError(tc.err, sysctls)
			if tc.wantKind == nil {
				if got != tc.err {
					t.Fatalf("sysctlError changed %v to %v", tc.err, got)
				}
				return
			}
			if !errors.Is(got, tc.wantKind) || !strings.HasPrefix(got.Error(), "linux.sysctls") || !strings.Contains(got.Error(), tc.want) {
				t.Fatalf("sysctlError: %v, want %v starting with linux.sysctls and naming %s", got, tc.wantKind, tc.want)
			}
		})
	}
}

func TestShmOptions(t *testing.T) {
	ids := []state.IDMapping{{ContainerID: 0, HostID: 65536, Size: 65536}}
	tests := []struct {
		name string
		rec  state.Sandbox
		want string
	}{
		{"host user namespace", state.Sandbox{}, "mode=1777,size=67108864"},
		{"own user namespace: its root's", state.Sandbox{UIDMappings: ids, GIDMappings: []state.IDMapping{{ContainerID: 0, HostID: 131072, Size: 65536}}},
			"mode=1777,size=67108864,uid=65536,gid=131072"},
		{"root not mapped", state.Sandbox{UIDMappings: []state.IDMapping{{ContainerID: 1, HostID: 65536, Size: 10}}, GIDMappings: ids},
			"mode=1777,size=67108864"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shmOptions(64<<20, &tt.rec); got != tt.want {
				t.Errorf("shmOptions = %q, want %q", got, tt.want)
			}
		})
	}
}
