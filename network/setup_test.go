package network

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestRuntimeConf(t *testing.T) {
	req := SetupRequest{
		SandboxID: "abc", NetNSPath: "/var/run/netns/x",
		PodName: "web", PodNamespace: "default", PodUID: "uid-1",
	}
	rt, err := req.runtimeConf()
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "web"},
		{"K8S_POD_INFRA_CONTAINER_ID", "abc"}, {"K8S_POD_UID", "uid-1"},
	}
	if rt.ContainerID != "abc" || rt.NetNS != "/var/run/netns/x" || rt.IfName != "eth0" || !reflect.DeepEqual(rt.Args, wantArgs) {
		t.Fatalf("runtime conf %+v", rt)
	}
	if rt.CapabilityArgs != nil {
		t.Fatalf("capability args without ports or bandwidth: %v", rt.CapabilityArgs)
	}

	// Mappings without a host port are dropped; empty bandwidth is no bandwidth.
	req.PortMappings = []PortMapping{{Protocol: "TCP", ContainerPort: 80}}
	req.Bandwidth = &Bandwidth{}
	if rt, err = req.runtimeConf(); err != nil || rt.CapabilityArgs != nil {
		t.Fatalf("capability args %v, %v; want none", rt.CapabilityArgs, err)
	}

	req.PortMappings = []PortMapping{
		{Protocol: "TCP", ContainerPort: 80, HostPort: 8080},
		{Protocol: "UDP", ContainerPort: 53, HostPort: 5353, HostIP: "127.0.0.1"},
		{ContainerPort: 22, HostPort: 2222},
		{Protocol: "SCTP", ContainerPort: 9},
	}
	req.Bandwidth = &Bandwidth{IngressRate: 1000, IngressBurst: 2000}
	if rt, err = req.runtimeConf(); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(rt.CapabilityArgs)
	want := `{"bandwidth":{"ingressRate":1000,"ingressBurst":2000},"portMappings":[` +
		`{"hostPort":8080,"containerPort":80,"protocol":"tcp"},` +
		`{"hostPort":5353,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"},` +
		`{"hostPort":2222,"containerPort":22,"protocol":"tcp"}]}`
	if string(got) != want {
		t.Fatalf("capability args\n got %s\nwant %s", got, want)
	}

	for _, bad := range []SetupRequest{
		{},
		{SandboxID: "x", PortMappings: []PortMapping{{Protocol: "icmp", ContainerPort: 1, HostPort: 1}}},
		{SandboxID: "x", PortMappings: []PortMapping{{ContainerPort: 0, HostPort: 1}}},
		{SandboxID: "x", PortMappings: []PortMapping{{ContainerPort: 1, HostPort: 70000}}},
	} {
		if _, err := bad.runtimeConf(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("runtimeConf(%+v): %v, want invalid argument", bad, err)
		}
	}
}

func TestToResultOrdersIPs(t *testing.T) {
	idx := func(i int) *int { return &i }
	cidr := func(s string) net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return *n
	}
	res := &types100.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*types100.Interface{
			{Name: "cni0"}, {Name: "veth1"}, {Name: "eth0", Sandbox: "/var/run/netns/x"},
		},
		IPs: []*types100.IPConfig{
			{Interface: idx(2), Address: cidr("fd00::5/64")},
			{Interface: idx(0), Address: cidr("10.1.0.1/24")}, // the bridge's: not the pod's
			{Interface: idx(2), Address: cidr("10.1.0.5/24")},
			{Address: cidr("10.2.0.5/24")},
		},
	}
	got, err := toResult(res)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.0.5", "10.2.0.5", "fd00::5"}
	if len(got.IPs) != len(want) {
		t.Fatalf("IPs %v, want %v", got.IPs, want)
	}
	for i, ip := range got.IPs {
		if ip.String() != want[i] {
			t.Fatalf("IPs %v, want %v", got.IPs, want)
		}
	}
	if got.Interface != "eth0" || !json.Valid(got.Raw) {
		t.Fatalf("interface %q, raw %s", got.Interface, got.Raw)
	}
}
