package pod

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

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
