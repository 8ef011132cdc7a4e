//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// badPod is a minimal valid pod config that mut spoils.
func badPod(name string, mut func(*runtimeapi.PodSandboxConfig)) *runtimeapi.PodSandboxConfig {
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Uid: "uid-" + name + "-" + randomHex(3), Namespace: "crib-it"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}
	mut(cfg)
	return cfg
}

// TestPodInputValidation: RunPodSandbox refuses what would add lines to the
// pod's hosts or resolv.conf, a host_ip that is no IP, and bad sysctls,
// each with InvalidArgument (or, for a sysctl the kernel lacks,
// FailedPrecondition) naming the field before any runtime's words, and
// leaves no pod, netns, veth, lease or process behind.
func TestPodInputValidation(t *testing.T) {
	h := start(t, Options{})
	c := h.client()
	before := h.snapshot()
	sysctl := func(k, v string) func(*runtimeapi.PodSandboxConfig) {
		return func(p *runtimeapi.PodSandboxConfig) { p.Linux.Sysctls = map[string]string{k: v} }
	}
	tests := []struct {
		name string
		mut  func(*runtimeapi.PodSandboxConfig)
		code codes.Code
		want string // the message starts with this
	}{
		{"newline in hostname", func(p *runtimeapi.PodSandboxConfig) { p.Hostname = "web\n6.6.6.6 evil.example" }, codes.InvalidArgument, "config.hostname"},
		{"newline in DNS server", func(p *runtimeapi.PodSandboxConfig) {
			p.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10\nnameserver 6.6.6.6"}}
		}, codes.InvalidArgument, "config.dns_config.servers[0]"},
		{"newline in DNS search", func(p *runtimeapi.PodSandboxConfig) {
			p.DnsConfig = &runtimeapi.DNSConfig{Searches: []string{"svc.cluster.local\nnameserver 6.6.6.6"}}
		}, codes.InvalidArgument, "config.dns_config.searches[0]"},
		{"newline in DNS option", func(p *runtimeapi.PodSandboxConfig) {
			p.DnsConfig = &runtimeapi.DNSConfig{Options: []string{"ndots:5\nnameserver 6.6.6.6"}}
		}, codes.InvalidArgument, "config.dns_config.options[0]"},
		{"host_ip not an IP", func(p *runtimeapi.PodSandboxConfig) {
			p.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 18080, HostIp: "not-an-ip"}}
		}, codes.InvalidArgument, "config.port_mappings[0].host_ip"},
		{"unknown non-namespaced sysctl", sysctl("vm.crib_nope", "1"), codes.InvalidArgument, "linux.sysctls"},
		{"sysctl of dots", sysctl("net....", "1"), codes.InvalidArgument, "linux.sysctls"},
		{"sysctl climbing", sysctl("net/../../../proc/self/x", "1"), codes.InvalidArgument, "linux.sysctls"},
		{"kernel.hostname sysctl", sysctl("kernel.hostname", "x"), codes.InvalidArgument, "linux.sysctls"},
		{"oversized sysctl value", sysctl("net.core.somaxconn", strings.Repeat("9", 1<<16)), codes.InvalidArgument, "linux.sysctls"},
		{"newline in sysctl value", sysctl("net.core.somaxconn", "128\n4096"), codes.InvalidArgument, "linux.sysctls"},
		// Well formed and namespaced, but the kernel has no such sysctl or
		// refuses the value: only the pause container's start finds out.
		{"net sysctl the kernel lacks", sysctl("net.ipv4.crib_nope", "1"), codes.FailedPrecondition, "linux.sysctls"},
		{"sysctl value the kernel refuses", sysctl("net.ipv4.tcp_syncookies", "not-a-number"), codes.InvalidArgument, "linux.sysctls"},
	}
	for i, tc := range tests {
		_, err := c.RunPodSandbox(ctx30(t), &runtimeapi.RunPodSandboxRequest{Config: badPod(fmt.Sprintf("bad%d", i), tc.mut)})
		t.Logf("%s: %v", tc.name, err)
		wantCode(t, tc.name, err, tc.code, tc.want)
		if st, _ := status.FromError(err); err != nil && !strings.HasPrefix(st.Message(), tc.want) {
			t.Errorf("%s: message %q does not start with crib's words %q", tc.name, st.Message(), tc.want)
		}
	}
	if pods := h.Pods(); len(pods) != 0 {
		t.Errorf("refused pods are listed: %v", pods)
	}
	h.checkLeaks(t, before, "after the refused RunPodSandbox calls")
}

// TestContainerResourceValidation: CreateContainer and
// UpdateContainerResources refuse CPU, memory and hugepage settings the
// kernel would refuse or that mean nothing, with InvalidArgument naming the
// field, and leave no container behind; the running container keeps its
// limits.
func TestContainerResourceValidation(t *testing.T) {
	h, podID, pod := containerPod(t)
	c := h.client()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "x", Namespace: "y", Uid: "z"},
		LogDirectory: pod["log_directory"].(string),
	}
	tests := []struct {
		name string
		r    *runtimeapi.LinuxContainerResources
		want string
	}{
		{"negative cpu_shares", &runtimeapi.LinuxContainerResources{CpuShares: -1}, "linux.resources.cpu_shares"},
		{"negative cpu_quota", &runtimeapi.LinuxContainerResources{CpuQuota: -5000}, "linux.resources.cpu_quota"},
		{"MinInt64 cpu_quota", &runtimeapi.LinuxContainerResources{CpuQuota: math.MinInt64}, "linux.resources.cpu_quota"},
		{"cpu_period too long", &runtimeapi.LinuxContainerResources{CpuPeriod: 10_000_000}, "linux.resources.cpu_period"},
		{"hugepage page_size a path", &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "../../x", Limit: 1 << 21}}},
			"linux.resources.hugepage_limits[0].page_size"},
	}
	for i, tc := range tests {
		_, err := c.CreateContainer(ctx30(t), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: podCfg,
			Config: badContainerConfig(func(cfg *runtimeapi.ContainerConfig) {
				cfg.Metadata.Name = fmt.Sprintf("bad%d", i)
				cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: tc.r}
			})})
		wantCode(t, "CreateContainer with "+tc.name, err, codes.InvalidArgument, tc.want)
	}
	if out := h.Crictl("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("refused creates left containers: %q", out)
	}

	id := h.CreateContainer(podID, shellContainer("limited", "exec sleep 600"), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	for _, tc := range tests {
		_, err := c.UpdateContainerResources(ctx30(t), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: tc.r})
		wantCode(t, "UpdateContainerResources with "+tc.name, err, codes.InvalidArgument, tc.want)
	}
	h.Crictl("rmp", "-f", podID)
}

// TestStopContainerHugeTimeout: a StopContainer timeout of MaxInt64 seconds
// means wait (long), not kill at once: a container that ignores SIGTERM is
// still running when the caller gives up, and a later timeout of 0 kills it.
func TestStopContainerHugeTimeout(t *testing.T) {
	h, podID, pod := containerPod(t)
	c := h.client()
	id := h.CreateContainer(podID, shellContainer("stubborn", "trap '' TERM; echo ready; while true; do sleep 0.1; done"), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := c.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: math.MaxInt64})
	if st, _ := status.FromError(err); err == nil || (st.Code() != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded)) {
		t.Errorf("StopContainer with timeout MaxInt64 returned %v within 3s, want it still waiting (DeadlineExceeded)", err)
	}
	if st := h.InspectContainer(id); st.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("after StopContainer with timeout MaxInt64 gave up: %+v, want still running (no kill before the timeout)", st.Status)
	}
	if _, err := c.StopContainer(ctx30(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatalf("StopContainer with timeout 0: %v", err)
	}
	if st := h.waitContainerState(id, "CONTAINER_EXITED"); st.Status.ExitCode != 137 {
		t.Errorf("after timeout 0: %+v, want exit 137", st.Status)
	}
	h.Crictl("rmp", "-f", podID)
}
