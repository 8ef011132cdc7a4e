package ocispec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// fakeCDI records the devices it is asked for and edits the spec as a
// CDI spec would: an env var and a shared mount per call.
type fakeCDI struct {
	got   [][]string
	fails error
}

func (f *fakeCDI) Inject(spec *specs.Spec, devices []string) (map[string]string, error) {
	f.got = append(f.got, slices.Clone(devices))
	if f.fails != nil {
		return nil, f.fails
	}
	spec.Process.Env = append(spec.Process.Env, "FROM_CDI=1")
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/cdi", Source: "/opt/cdi", Type: "bind", Options: []string{"rbind", "rshared"}})
	spec.Linux.Devices = append(spec.Linux.Devices,
		specs.LinuxDevice{Path: "/dev/vendor-foo", Type: "c", Major: 1, Minor: 3},
		specs.LinuxDevice{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5})
	return map[string]string{"/dev/vendor-foo": "/dev/null", "/dev/zero": "/dev/zero"}, nil
}

func TestBuildCDI(t *testing.T) {
	dev := func(names ...string) []*runtimeapi.CDIDevice {
		var ds []*runtimeapi.CDIDevice
		for _, n := range names {
			ds = append(ds, &runtimeapi.CDIDevice{Name: n})
		}
		return ds
	}
	tests := []struct {
		name     string
		devices  []*runtimeapi.CDIDevice
		annos    map[string]string
		podAnnos map[string]string
		podToo   bool     // Input.CDIPodAnnotations
		userns   bool     // the pod has a user namespace
		off      bool     // no CDI
		fails    error    // the registry's answer
		want     []string // devices asked of the registry; nil: not asked
		wantErr  error
		errHas   string
	}{
		{name: "none asked: registry untouched", annos: map[string]string{"other": "vendor.com/device=foo"}},
		{name: "cdi_devices", devices: dev("vendor.com/device=foo", "vendor.com/device=bar"),
			want: []string{"vendor.com/device=foo", "vendor.com/device=bar"}},
		{name: "annotations in key order, comma-separated", annos: map[string]string{
			"cdi.k8s.io/b": "vendor.com/device=b1, vendor.com/device=b2", "cdi.k8s.io/a": "vendor.com/device=a", "cdi.k8s.io-not/x": "junk"},
			want: []string{"vendor.com/device=a", "vendor.com/device=b1", "vendor.com/device=b2"}},
		{name: "field then annotations, once each", devices: dev("vendor.com/device=foo"),
			annos: map[string]string{"cdi.k8s.io/x": "vendor.com/device=foo,vendor.com/device=bar"},
			want:  []string{"vendor.com/device=foo", "vendor.com/device=bar"}},
		{name: "pod annotations ignored by default", podAnnos: map[string]string{"cdi.k8s.io/x": "vendor.com/device=foo"}},
		{name: "malformed pod annotation ignored by default", podAnnos: map[string]string{"cdi.k8s.io/x": "foo"}},
		{name: "pod annotations when trusted", podToo: true, devices: dev("vendor.com/device=foo"),
			podAnnos: map[string]string{"cdi.k8s.io/x": "vendor.com/device=foo,vendor.com/device=pod"},
			want:     []string{"vendor.com/device=foo", "vendor.com/device=pod"}},
		{name: "user namespace: renamed nodes bound from the host's", userns: true, devices: dev("vendor.com/device=foo"),
			want: []string{"vendor.com/device=foo"}},
		{name: "malformed cdi_devices name", devices: dev("vendor.com/device=foo", "foo"),
			wantErr: errdefs.ErrInvalidArgument, errHas: `cdi_devices[1].name: unqualified device "foo"`},
		{name: "bad vendor", devices: dev("-vendor/device=foo"),
			wantErr: errdefs.ErrInvalidArgument, errHas: `cdi_devices[0].name: invalid device "-vendor/device=foo"`},
		{name: "malformed annotation", annos: map[string]string{"cdi.k8s.io/x": "vendor.com/device=foo,vendor.com/device"},
			wantErr: errdefs.ErrInvalidArgument, errHas: `annotations["cdi.k8s.io/x"]: unqualified device "vendor.com/device"`},
		{name: "empty annotation", annos: map[string]string{"cdi.k8s.io/x": ""},
			wantErr: errdefs.ErrInvalidArgument, errHas: `annotations["cdi.k8s.io/x"]`},
		{name: "malformed pod annotation when trusted", podToo: true, podAnnos: map[string]string{"cdi.k8s.io/p": "x=y"},
			wantErr: errdefs.ErrInvalidArgument, errHas: `pod annotations["cdi.k8s.io/p"]`},
		{name: "off: cdi_devices refused", off: true, devices: dev("vendor.com/device=foo"),
			wantErr: errdefs.ErrFailedPrecondition, errHas: "cdi_devices: CDI is off on this node (cdi.enabled = false) but the container asks for vendor.com/device=foo"},
		{name: "off: annotations left alone", off: true, annos: map[string]string{"cdi.k8s.io/x": "not a device"}},
		{name: "unknown device from the registry", devices: dev("vendor.com/device=nope"),
			fails: errdefs.FailedPrecondition("CDI device vendor.com/device=nope is defined by no spec file"),
			want:  []string{"vendor.com/device=nope"}, wantErr: errdefs.ErrFailedPrecondition, errHas: "vendor.com/device=nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
				Command: []string{"/bin/true"}, CDIDevices: tc.devices, Annotations: tc.annos,
			}
			in := testInput(t, cfg, imgspec.ImageConfig{})
			in.Pod.Annotations = tc.podAnnos
			in.CDIPodAnnotations = tc.podToo
			if tc.userns {
				in.Pod.UserNSPath = "/run/crib/pods/p1/ns/user"
			}
			reg := &fakeCDI{fails: tc.fails}
			if !tc.off {
				in.CDI = reg
			}
			spec, err := Build(in)
			if !slices.EqualFunc(reg.got, wantCalls(tc.want), slices.Equal) {
				t.Errorf("registry asked for %q, want %q", reg.got, wantCalls(tc.want))
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("Build() error = %v, want %v containing %q", err, tc.wantErr, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build(): %v", err)
			}
			injected := tc.want != nil
			if slices.Contains(spec.Process.Env, "FROM_CDI=1") != injected {
				t.Errorf("env %q: CDI edit kept = %v, want %v", spec.Process.Env, !injected, injected)
			}
			if injected {
				checkDeviceNodes(t, spec, tc.userns)
			}
			// The CDI mount asks for shared propagation: the root's
			// follows, even though Build set it before CDI ran.
			if got := spec.Linux.RootfsPropagation == "rshared"; got != injected {
				t.Errorf("rootfs propagation %q after CDI edits (injected %v)", spec.Linux.RootfsPropagation, injected)
			}
		})
	}
}

func wantCalls(devices []string) [][]string {
	if devices == nil {
		return nil
	}
	return [][]string{devices}
}

// checkDeviceNodes checks the fake's device nodes: made, or in a user
// namespace bound from the host, from /dev/null for the one the host
// calls so.
func checkDeviceNodes(t *testing.T, spec *specs.Spec, userns bool) {
	t.Helper()
	var nodes []string
	for _, d := range spec.Linux.Devices {
		nodes = append(nodes, d.Path)
	}
	bound := ""
	for _, m := range spec.Mounts {
		if m.Destination == "/dev/vendor-foo" {
			bound = m.Source
		}
	}
	switch {
	case !userns && (!slices.Equal(nodes, []string{"/dev/vendor-foo", "/dev/zero"}) || bound != ""):
		t.Errorf("device nodes %q, /dev/vendor-foo bound from %q; want both nodes made", nodes, bound)
	case userns && (!slices.Equal(nodes, []string{"/dev/zero"}) || bound != "/dev/null"):
		t.Errorf("in a user namespace: device nodes %q, /dev/vendor-foo bound from %q; want /dev/zero kept (libcontainer binds it from its path) and /dev/vendor-foo bound from /dev/null", nodes, bound)
	}
}
