package server

import (
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/internal/fuzzcorpus"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// sandboxSeeds are the RunPodSandbox requests the corpus starts from.
func sandboxSeeds() map[string]*runtimeapi.RunPodSandboxRequest {
	md := &runtimeapi.PodSandboxMetadata{Name: "web-0", Uid: "0b8e6f7c", Namespace: "default", Attempt: 1}
	idmap := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	return map[string]*runtimeapi.RunPodSandboxRequest{
		"minimal": {Config: &runtimeapi.PodSandboxConfig{Metadata: md}},
		"kubelet": {Config: &runtimeapi.PodSandboxConfig{
			Metadata: md, Hostname: "web-0", LogDirectory: "/var/log/pods/default_web-0_0b8e6f7c",
			DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"default.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}},
			PortMappings: []*runtimeapi.PortMapping{
				{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.1"},
				{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53},
			},
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"kubernetes.io/egress-bandwidth": "1M"},
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				CgroupParent: "/kubepods/besteffort/pod0b8e6f7c",
				Sysctls:      map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"},
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				},
			},
		}},
		"host network": {Config: &runtimeapi.PodSandboxConfig{
			Metadata: md,
			Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE},
			}},
		}},
		"user namespace": {Config: &runtimeapi.PodSandboxConfig{
			Metadata: md,
			Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: idmap, Gids: idmap}},
			}},
		}},
		"hostile": {Config: &runtimeapi.PodSandboxConfig{
			Metadata: md, Hostname: "x\nevil",
			DnsConfig:    &runtimeapi.DNSConfig{Servers: []string{"1.1.1.1\nnameserver 6.6.6.6"}, Searches: []string{"a b"}, Options: []string{""}},
			PortMappings: []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 80, HostIp: "not-an-ip"}},
			Linux:        &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net....": "1", "kernel.hostname": "x"}},
		}},
	}
}

// FuzzSandboxSpec feeds RunPodSandbox's validation requests decoded from
// protobuf wire bytes. It must not panic; every error must be one the
// client is told is its own (InvalidArgument or FailedPrecondition); and
// a record it accepts holds nothing that would add a line to the pod's
// hostname, hosts or resolv.conf, only IP addresses as DNS servers and
// host IPs, ports in range and sysctls ocispec.CheckSysctls takes.
func FuzzSandboxSpec(f *testing.F) {
	for _, req := range sandboxSeeds() {
		b, err := marshalSeed(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &runtimeapi.RunPodSandboxRequest{}
		if err := proto.Unmarshal(data, req); err != nil {
			return
		}
		spec, err := sandboxSpec(req, nil)
		if err != nil {
			if c := Code(err); c != codes.InvalidArgument && c != codes.FailedPrecondition {
				t.Fatalf("sandboxSpec: %v: code %v", err, c)
			}
			return
		}
		line := func(field, s string) {
			if strings.ContainsAny(s, "\n\r\x00") {
				t.Errorf("%s %q with a line break passed", field, s)
			}
		}
		line("hostname", spec.Hostname)
		for _, s := range spec.DNS.Servers {
			if _, err := netip.ParseAddr(s); err != nil {
				t.Errorf("DNS server %q passed", s)
			}
		}
		for _, s := range append(append([]string{}, spec.DNS.Searches...), spec.DNS.Options...) {
			line("DNS search or option", s)
			if strings.ContainsAny(s, " \t") || s == "" {
				t.Errorf("DNS word %q passed", s)
			}
		}
		for _, pm := range spec.PortMappings {
			if pm.HostIP != "" {
				if _, err := netip.ParseAddr(pm.HostIP); err != nil {
					t.Errorf("host_ip %q passed", pm.HostIP)
				}
			}
			if pm.HostPort <= 0 || pm.HostPort > 65535 || pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
				t.Errorf("port mapping %+v passed", pm)
			}
		}
		if err := ocispec.CheckSysctls(&spec); err != nil {
			t.Errorf("sysctls passed that CheckSysctls refuses: %v", err)
		}
	})
}

// TestWriteFuzzCorpus checks that every seed of sandboxSeeds is in the
// checked-in corpus testdata/fuzz/FuzzSandboxSpec, or rewrites it with
// CRIB_WRITE_FUZZ_CORPUS=1 (after changing the seeds).
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := map[string]proto.Message{}
	for name, m := range sandboxSeeds() {
		seeds[name] = m
	}
	fuzzcorpus.Check(t, "FuzzSandboxSpec", seeds)
}

// marshalSeed marshals maps in key order, so a seed's bytes are stable.
func marshalSeed(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}
