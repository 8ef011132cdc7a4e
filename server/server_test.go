package server

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
)

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{errdefs.InvalidArgument("x"), codes.InvalidArgument},
		{fmt.Errorf("wrapped: %w", errdefs.NotFound("pod %q", "a")), codes.NotFound},
		{errdefs.AlreadyExists("x"), codes.AlreadyExists},
		{errdefs.FailedPrecondition("x"), codes.FailedPrecondition},
		{errdefs.Unavailable("x"), codes.Unavailable},
		{errdefs.Unauthenticated("x"), codes.Unauthenticated},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("plain"), codes.Unknown},
	}
	for _, tc := range tests {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestSandboxSpecValidation(t *testing.T) {
	md := &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}
	pod := func(mut func(*runtimeapi.PodSandboxConfig)) *runtimeapi.RunPodSandboxRequest {
		c := &runtimeapi.PodSandboxConfig{Metadata: md}
		mut(c)
		return &runtimeapi.RunPodSandboxRequest{Config: c}
	}
	tests := []struct {
		name    string
		req     *runtimeapi.RunPodSandboxRequest
		wantErr string
	}{
		{"no config", &runtimeapi.RunPodSandboxRequest{}, "config is required"},
		{"no metadata", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}, "config.metadata is required"},
		{"empty name", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Namespace: "x"}}}, "config.metadata.name"},
		{"unknown handler", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md}, RuntimeHandler: "kata"}, `runtime_handler "kata"`},
		{"bad port", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md,
			PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 70000}}}}, "port_mappings[0].container_port"},
		{"ok", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md}}, ""},
		{"ok full", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.Hostname = "web-0.web.ns.svc.cluster.local"
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10", "fd00::a"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5", "edns0"}}
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.1"}, {ContainerPort: 81, HostPort: 8081, HostIp: "::1"}}
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}}
		}), ""},
		{"newline in hostname", pod(func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "web\n6.6.6.6 evil" }), "config.hostname"},
		{"tab in hostname", pod(func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "web\tx" }), "config.hostname"},
		{"long hostname", pod(func(c *runtimeapi.PodSandboxConfig) { c.Hostname = strings.Repeat("a", 65) }), "config.hostname"},
		{"newline in DNS server", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1\nnameserver 6.6.6.6"}}
		}), "config.dns_config.servers[0]"},
		{"DNS server not an IP", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"dns.example"}}
		}), "config.dns_config.servers[0]"},
		{"newline in DNS search", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Searches: []string{"a", "b\nnameserver 6.6.6.6"}}
		}), "config.dns_config.searches[1]"},
		{"space in DNS search", pod(func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig = &runtimeapi.DNSConfig{Searches: []string{"a b"}} }), "config.dns_config.searches[0]"},
		{"newline in DNS option", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Options: []string{"ndots:5\nnameserver 6.6.6.6"}}
		}), "config.dns_config.options[0]"},
		{"empty DNS option", pod(func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig = &runtimeapi.DNSConfig{Options: []string{""}} }), "config.dns_config.options[0]"},
		{"host_ip not an IP", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080, HostIp: "not-an-ip"}}
		}), "config.port_mappings[0].host_ip"},
		{"host_ip without host port", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostIp: "not-an-ip"}}
		}), "config.port_mappings[0].host_ip"},
		{"unknown sysctl", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"vm.nope": "1"}}
		}), "linux.sysctls"},
		{"sysctl of dots", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.....": "1"}}
		}), "linux.sysctls"},
		{"oversized sysctl value", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.core.somaxconn": strings.Repeat("9", 1<<16)}}
		}), "linux.sysctls"},
		{"net sysctl with host network", pod(func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.core.somaxconn": "1"},
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}}
		}), "linux.sysctls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sandboxSpec(tc.req, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || Code(err) != codes.InvalidArgument {
				t.Fatalf("err %v (code %v), want InvalidArgument containing %q", err, Code(err), tc.wantErr)
			}
		})
	}
}

func TestSandboxSpecConversion(t *testing.T) {
	req := &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata:  &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u", Attempt: 2},
		Hostname:  "h",
		Labels:    map[string]string{"a": "b"},
		DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"1.2.3.4"}},
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353},
			{ContainerPort: 80}, // no host port: dropped
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/pod1",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD,
			}},
		},
	}}
	spec, err := sandboxSpec(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Metadata.Attempt != 2 || spec.Hostname != "h" || spec.CgroupParent != "/kubepods/pod1" ||
		spec.NetworkMode != state.NamespaceNode || spec.PIDMode != state.NamespacePod ||
		len(spec.PortMappings) != 1 || spec.PortMappings[0].Protocol != "udp" || spec.DNS.Servers[0] != "1.2.3.4" {
		t.Errorf("conversion: %+v", spec)
	}
}

func TestInterceptorKeepsStatus(t *testing.T) {
	icpt := Interceptor(logrus.New())
	info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/Exec"}
	tests := []struct {
		err      error
		code     codes.Code
		wantDesc string
	}{
		{status.Error(codes.Unimplemented, "method Exec not implemented"), codes.Unimplemented, "method Exec not implemented"},
		{errdefs.NotFound("pod sandbox %q not found", "x"), codes.NotFound, `pod sandbox "x" not found`},
	}
	for _, tc := range tests {
		_, err := icpt(context.Background(), &runtimeapi.ExecRequest{}, info, func(context.Context, any) (any, error) { return nil, tc.err })
		st, _ := status.FromError(err)
		if st.Code() != tc.code || st.Message() != tc.wantDesc {
			t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), tc.code, tc.wantDesc)
		}
	}
}

func TestSendChunks(t *testing.T) {
	for _, n := range []int{0, 1, streamChunk, streamChunk + 1, 3*streamChunk - 1} {
		items := make([]int, n)
		var sizes []int
		err := sendChunks(items, func(c []int) *[]int { return &c }, func(c *[]int) error { sizes = append(sizes, len(*c)); return nil })
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, s := range sizes {
			if s > streamChunk {
				t.Errorf("n=%d: a message of %d items", n, s)
			}
			total += s
		}
		wantMsgs := max(1, (n+streamChunk-1)/streamChunk)
		if total != n || len(sizes) != wantMsgs {
			t.Errorf("n=%d: messages %v, want %d messages, %d items", n, sizes, wantMsgs, n)
		}
	}
}

func TestStopTimeout(t *testing.T) {
	tests := []struct {
		secs int64
		want time.Duration
	}{
		{0, 0},
		{-5, 0},
		{math.MinInt64, 0},
		{30, 30 * time.Second},
		{int64(math.MaxInt64 / time.Second), time.Duration(math.MaxInt64/time.Second) * time.Second},
		{int64(math.MaxInt64/time.Second) + 1, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
	}
	for _, tc := range tests {
		if got := stopTimeout(tc.secs); got != tc.want {
			t.Errorf("stopTimeout(%d) = %v, want %v", tc.secs, got, tc.want)
		}
	}
}

// TestStatusRuntimeHandlers: Status lists the default handler first, then
// each configured one by name, each with its own features; RunPodSandbox
// takes a configured handler and refuses another naming it.
func TestStatusRuntimeHandlers(t *testing.T) {
	s := New(Options{
		Network:        readyNetwork{},
		UserNamespaces: true,
		Handlers: map[string]sandbox.Handler{
			"runc": {RecursiveReadOnlyMounts: true},
			"crun": {UserNamespaces: true},
		},
	})
	resp, err := s.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type hf struct {
		name        string
		userns, rro bool
	}
	var got []hf
	for _, h := range resp.GetRuntimeHandlers() {
		got = append(got, hf{h.GetName(), h.GetFeatures().GetUserNamespaces(), h.GetFeatures().GetRecursiveReadOnlyMounts()})
	}
	want := []hf{{"", true, false}, {"crun", true, false}, {"runc", false, true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("handlers %+v, want %+v", got, want)
	}

	md := &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}
	spec, err := sandboxSpec(&runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md}, RuntimeHandler: "crun"}, s.opts.Handlers)
	if err != nil || spec.RuntimeHandler != "crun" {
		t.Errorf("crun: %+v, %v", spec.RuntimeHandler, err)
	}
	_, err = sandboxSpec(&runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: md}, RuntimeHandler: "kata"}, s.opts.Handlers)
	if Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `runtime_handler "kata" is not configured (handlers: crun, runc)`) {
		t.Errorf("kata: %v", err)
	}
}
