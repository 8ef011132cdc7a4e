package ocispec

import (
	"errors"
	"strings"
	"testing"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

func TestCheckSysctls(t *testing.T) {
	one := func(k, v string) map[string]string { return map[string]string{k: v} }
	tests := []struct {
		name    string
		rec     state.Sandbox
		wantErr string // "" accepts
	}{
		{"net in pod netns", state.Sandbox{Sysctls: one("net.ipv4.ip_forward", "1")}, ""},
		{"ipc in pod ipc", state.Sandbox{Sysctls: map[string]string{"kernel.shmmax": "1", "fs.mqueue.msg_max": "9"}}, ""},
		{"slash form with a dotted interface", state.Sandbox{Sysctls: one("net/ipv4/conf/eth0.100/rp_filter", "1")}, ""},
		{"port range with a space", state.Sandbox{Sysctls: one("net.ipv4.ip_local_port_range", "1024 65000")}, ""},
		{"range with a tab", state.Sandbox{Sysctls: one("net.ipv4.ping_group_range", "0\t2147483647")}, ""},
		{"domainname", state.Sandbox{Sysctls: one("kernel.domainname", "example.com")}, ""},
		{"net with host network", state.Sandbox{NetworkMode: state.NamespaceNode, Sysctls: one("net.core.somaxconn", "1")}, "network namespace"},
		{"ipc with host ipc", state.Sandbox{IPCMode: state.NamespaceNode, Sysctls: one("kernel.msgmax", "1")}, "IPC namespace"},
		{"domainname with host network", state.Sandbox{NetworkMode: state.NamespaceNode, Sysctls: one("kernel.domainname", "x")}, "UTS namespace"},
		{"not namespaced", state.Sandbox{Sysctls: one("vm.swappiness", "1")}, "not a namespaced sysctl"},
		{"kernel.shm prefix only", state.Sandbox{Sysctls: one("kernel.shmfoo", "1")}, "not a namespaced sysctl"},
		{"hostname", state.Sandbox{Sysctls: one("kernel.hostname", "x")}, "hostname"},
		{"dots", state.Sandbox{Sysctls: one("net....", "1")}, "not a sysctl name"},
		{"only dots", state.Sandbox{Sysctls: one("....", "1")}, "not a sysctl name"},
		{"dot dot path", state.Sandbox{Sysctls: one("net/../../etc/x", "1")}, "not a sysctl name"},
		{"empty name", state.Sandbox{Sysctls: one("", "1")}, "not a sysctl name"},
		{"space in name", state.Sandbox{Sysctls: one("net.core. somaxconn", "1")}, "not a sysctl name"},
		{"long name", state.Sandbox{Sysctls: one("net."+strings.Repeat("a", 300), "1")}, "not a sysctl name"},
		{"oversized value", state.Sandbox{Sysctls: one("net.core.somaxconn", strings.Repeat("1", 5000))}, "more than the kernel reads"},
		{"newline in value", state.Sandbox{Sysctls: one("net.core.somaxconn", "1\n2")}, "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSysctls(&tc.rec)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) ||
				!strings.Contains(err.Error(), "linux.sysctls") {
				t.Fatalf("err %v, want InvalidArgument naming linux.sysctls and containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDotSysctl(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":              "net.ipv4.ip_forward",
		"net/ipv4/ip_forward":              "net.ipv4.ip_forward",
		"net/ipv4/conf/eth0.100/rp_filter": "net.ipv4.conf.eth0/100.rp_filter",
		"kernel":                           "kernel",
	} {
		if got := DotSysctl(in); got != want {
			t.Errorf("DotSysctl(%q) = %q, want %q", in, got, want)
		}
	}
}
