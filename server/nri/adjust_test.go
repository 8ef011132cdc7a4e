package nri

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// baseSpec is a container's spec as ocispec.Build might make it, cut to
// what adjustments touch.
func baseSpec() *specs.Spec {
	adj := 100
	return &specs.Spec{
		Annotations: map[string]string{"from-cri": "yes", "drop-me": "x"},
		Process: &specs.Process{
			Args:        []string{"/bin/sh"},
			Env:         []string{"PATH=/bin", "KEEP=1", "GONE=1"},
			OOMScoreAdj: &adj,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data", Type: "bind", Source: "/old", Options: []string{"rbind"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/run/netns/a"}},
			Sysctl:     map[string]string{"net.ipv4.ip_forward": "1"},
		},
	}
}

func TestApplyAdjustment(t *testing.T) {
	tests := []struct {
		name    string
		adj     *api.ContainerAdjustment
		cdi     ocispec.CDI
		check   func(t *testing.T, s *specs.Spec)
		wantErr error
	}{
		{name: "nil changes nothing", adj: nil, check: func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s, baseSpec()) {
				t.Errorf("spec changed: %+v", s)
			}
		}},
		{name: "env added, replaced, removed", adj: &api.ContainerAdjustment{Env: []*api.KeyValue{
			{Key: "NEW", Value: "v"}, {Key: "KEEP", Value: "2"}, {Key: api.MarkForRemoval("GONE")},
		}}, check: func(t *testing.T, s *specs.Spec) {
			if want := []string{"PATH=/bin", "KEEP=2", "NEW=v"}; !reflect.DeepEqual(s.Process.Env, want) {
				t.Errorf("env = %q, want %q", s.Process.Env, want)
			}
		}},
		{name: "annotations added and removed", adj: &api.ContainerAdjustment{Annotations: map[string]string{
			"nri.example/injected": "yes", api.MarkForRemoval("drop-me"): "",
		}}, check: func(t *testing.T, s *specs.Spec) {
			if want := map[string]string{"from-cri": "yes", "nri.example/injected": "yes"}; !reflect.DeepEqual(s.Annotations, want) {
				t.Errorf("annotations = %v, want %v", s.Annotations, want)
			}
		}},
		{name: "args replaced", adj: &api.ContainerAdjustment{Args: []string{"/bin/true", "x"}}, check: func(t *testing.T, s *specs.Spec) {
			if want := []string{"/bin/true", "x"}; !reflect.DeepEqual(s.Process.Args, want) {
				t.Errorf("args = %q", s.Process.Args)
			}
		}},
		{name: "mounts added, replaced, removed, sorted", adj: &api.ContainerAdjustment{Mounts: []*api.Mount{
			{Destination: "/data", Type: "bind", Source: "/new", Options: []string{"rbind", "ro"}},
			{Destination: "/a/b", Type: "tmpfs", Source: "tmpfs"},
			{Destination: api.MarkForRemoval("/proc")},
		}}, check: func(t *testing.T, s *specs.Spec) {
			var dests []string
			for _, m := range s.Mounts {
				dests = append(dests, m.Destination)
				if m.Destination == "/data" && m.Source != "/new" {
					t.Errorf("/data source = %q, want /new", m.Source)
				}
			}
			if want := []string{"/data", "/a/b"}; !reflect.DeepEqual(dests, want) {
				t.Errorf("mounts = %q, want %q (fewer path parts first)", dests, want)
			}
		}},
		{name: "hooks appended", adj: &api.ContainerAdjustment{Hooks: &api.Hooks{
			Poststart:     []*api.Hook{{Path: "/bin/hook", Args: []string{"hook", "start"}}},
			CreateRuntime: []*api.Hook{{Path: "/bin/hook"}},
		}}, check: func(t *testing.T, s *specs.Spec) {
			if s.Hooks == nil || len(s.Hooks.Poststart) != 1 || s.Hooks.Poststart[0].Path != "/bin/hook" || len(s.Hooks.CreateRuntime) != 1 {
				t.Errorf("hooks = %+v", s.Hooks)
			}
		}},
		{name: "rlimits appended", adj: &api.ContainerAdjustment{Rlimits: []*api.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}}}, check: func(t *testing.T, s *specs.Spec) {
			if want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 512}}; !reflect.DeepEqual(s.Process.Rlimits, want) {
				t.Errorf("rlimits = %+v", s.Process.Rlimits)
			}
		}},
		{name: "resources and oom score", adj: &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{
			Resources: &api.LinuxResources{
				Cpu:     &api.LinuxCPU{Shares: api.UInt64(512), Quota: api.Int64(50000), Period: api.UInt64(100000), Cpus: "0-1"},
				Memory:  &api.LinuxMemory{Limit: api.Int64(64 << 20)},
				Pids:    &api.LinuxPids{Limit: 100},
				Unified: map[string]string{"memory.high": "1000000"},
			},
			OomScoreAdj: api.Int(500),
		}}, check: func(t *testing.T, s *specs.Spec) {
			r := s.Linux.Resources
			if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || r.CPU.Cpus != "0-1" {
				t.Errorf("cpu = %+v", r.CPU)
			}
			if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 {
				t.Errorf("memory = %+v, want limit and swap 64 MiB", r.Memory)
			}
			if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != 100 || r.Unified["memory.high"] != "1000000" {
				t.Errorf("pids %+v unified %v", r.Pids, r.Unified)
			}
			if *s.Process.OOMScoreAdj != 500 {
				t.Errorf("oom_score_adj = %d", *s.Process.OOMScoreAdj)
			}
		}},
		{name: "device added with its cgroup rule", adj: &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{
			Devices: []*api.LinuxDevice{{Path: "/dev/null2", Type: "c", Major: 1, Minor: 3, FileMode: api.FileMode(0o666)}},
		}}, check: func(t *testing.T, s *specs.Spec) {
			if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/null2" || s.Linux.Devices[0].Major != 1 {
				t.Errorf("devices = %+v", s.Linux.Devices)
			}
			d := s.Linux.Resources.Devices
			if len(d) != 1 || !d[0].Allow || d[0].Type != "c" || *d[0].Major != 1 || *d[0].Minor != 3 || d[0].Access != "rw" {
				t.Errorf("device cgroup = %+v", d)
			}
		}},
		{name: "sysctls and namespaces", adj: &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{
			Sysctl:     map[string]string{"net.core.somaxconn": "1024", api.MarkForRemoval("net.ipv4.ip_forward"): ""},
			Namespaces: []*api.LinuxNamespace{{Type: "network", Path: "/run/netns/b"}, {Type: api.MarkForRemoval("pid")}},
		}}, check: func(t *testing.T, s *specs.Spec) {
			if want := map[string]string{"net.core.somaxconn": "1024"}; !reflect.DeepEqual(s.Linux.Sysctl, want) {
				t.Errorf("sysctl = %v", s.Linux.Sysctl)
			}
			if want := []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/run/netns/b"}}; !reflect.DeepEqual(s.Linux.Namespaces, want) {
				t.Errorf("namespaces = %+v", s.Linux.Namespaces)
			}
		}},
		{name: "bad namespace type", adj: &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{
			Namespaces: []*api.LinuxNamespace{{Type: "bogus"}},
		}}, wantErr: errdefs.ErrInvalidArgument},
		{name: "CDI device injected", adj: &api.ContainerAdjustment{CDIDevices: []*api.CDIDevice{{Name: "vendor.com/dev=foo"}}}, cdi: fakeCDI{}, check: func(t *testing.T, s *specs.Spec) {
			if !slices.Contains(s.Process.Env, "CDI_DEVICE=vendor.com/dev=foo") {
				t.Errorf("env = %v, want the fake CDI's edit", s.Process.Env)
			}
		}},
		{name: "CDI device unknown", adj: &api.ContainerAdjustment{CDIDevices: []*api.CDIDevice{{Name: "vendor.com/dev=bar"}}}, cdi: fakeCDI{}, wantErr: errdefs.ErrFailedPrecondition},
		{name: "CDI devices refused with CDI off", adj: &api.ContainerAdjustment{CDIDevices: []*api.CDIDevice{{Name: "vendor.com/dev=foo"}}}, wantErr: errdefs.ErrFailedPrecondition},
		{name: "block I/O class refused", adj: &api.ContainerAdjustment{Linux: &api.LinuxContainerAdjustment{
			Resources: &api.LinuxResources{BlockioClass: api.String("slow")},
		}}, wantErr: errdefs.ErrFailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			err := applyAdjustment(s, tc.adj, tc.cdi)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

// fakeCDI knows one device, vendor.com/dev=foo, whose edit is an env var.
type fakeCDI struct{}

func (fakeCDI) Inject(spec *specs.Spec, devices []string) (map[string]string, error) {
	for _, d := range devices {
		if d != "vendor.com/dev=foo" {
			return nil, errdefs.FailedPrecondition("CDI device %q is unknown", d)
		}
		spec.Process.Env = append(spec.Process.Env, "CDI_DEVICE="+d)
	}
	return nil, nil
}
