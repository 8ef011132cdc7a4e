package ocispec

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// kubeletMasked and kubeletReadonly are the lists kubelet sends for
// procMount Default.
var (
	kubeletMasked   = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/sys/firmware"}
	kubeletReadonly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func TestMaskedPaths(t *testing.T) {
	tests := []struct {
		name                   string
		privileged             bool
		masked, readonly       []string
		wantMasked, wantRdonly []string
	}{
		{"procMount Default", false, kubeletMasked, kubeletReadonly, kubeletMasked, kubeletReadonly},
		// An empty list is not encoded in proto3 and arrives as nil.
		{"procMount Unmasked, as decoded", false, nil, nil, nil, nil},
		{"procMount Unmasked, as built", false, []string{}, []string{}, nil, nil},
		{"only masked paths", false, []string{"/proc/kcore"}, nil, []string{"/proc/kcore"}, nil},
		{"privileged ignores the lists", true, kubeletMasked, kubeletReadonly, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{Command: []string{"x"}, Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					Privileged: tc.privileged, MaskedPaths: tc.masked, ReadonlyPaths: tc.readonly,
				},
			}}
			spec, err := Build(testInput(t, cfg, imgspec.ImageConfig{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(spec.Linux.MaskedPaths) != 0 || len(tc.wantMasked) != 0 {
				if !reflect.DeepEqual(spec.Linux.MaskedPaths, tc.wantMasked) {
					t.Errorf("masked paths %q, want %q", spec.Linux.MaskedPaths, tc.wantMasked)
				}
			}
			if len(spec.Linux.ReadonlyPaths) != 0 || len(tc.wantRdonly) != 0 {
				if !reflect.DeepEqual(spec.Linux.ReadonlyPaths, tc.wantRdonly) {
					t.Errorf("readonly paths %q, want %q", spec.Linux.ReadonlyPaths, tc.wantRdonly)
				}
			}
		})
	}
}

// fakeAppArmor is a node's AppArmor: enabled or not, with these profiles
// loaded.
type fakeAppArmor struct {
	enabled bool
	loaded  []string
}

func (f fakeAppArmor) Enabled() bool { return f.enabled }

func (f fakeAppArmor) Loaded(name string) (bool, error) {
	return slices.Contains(f.loaded, name), nil
}

func TestContainerAppArmor(t *testing.T) {
	on := fakeAppArmor{enabled: true, loaded: []string{"crib-default", "k8s-deny-write"}}
	off := fakeAppArmor{}
	prof := func(kind runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: kind, LocalhostRef: ref}
	}
	const (
		rd  = runtimeapi.SecurityProfile_RuntimeDefault
		unc = runtimeapi.SecurityProfile_Unconfined
		lh  = runtimeapi.SecurityProfile_Localhost
	)
	tests := []struct {
		name       string
		aa         AppArmor
		structured *runtimeapi.SecurityProfile
		legacy     string
		privileged bool
		want       string
		wantErr    error  // errdefs kind
		errHas     string // substring of the error
	}{
		{name: "no request gets the default", aa: on, want: "crib-default"},
		{name: "RuntimeDefault", aa: on, structured: prof(rd, ""), want: "crib-default"},
		{name: "Unconfined", aa: on, structured: prof(unc, ""), want: ""},
		{name: "Localhost loaded", aa: on, structured: prof(lh, "k8s-deny-write"), want: "k8s-deny-write"},
		{name: "Localhost with the string prefix", aa: on, structured: prof(lh, "localhost/k8s-deny-write"), want: "k8s-deny-write"},
		{name: "Localhost not loaded", aa: on, structured: prof(lh, "k8s-missing"), wantErr: errdefs.ErrFailedPrecondition, errHas: `"k8s-missing" is not loaded`},
		{name: "Localhost without a name", aa: on, structured: prof(lh, ""), wantErr: errdefs.ErrInvalidArgument, errHas: "localhost_ref"},
		{name: "ref without Localhost", aa: on, structured: prof(rd, "x"), wantErr: errdefs.ErrInvalidArgument, errHas: "localhost_ref"},
		{name: "unknown type", aa: on, structured: prof(7, ""), wantErr: errdefs.ErrInvalidArgument, errHas: "profile_type"},
		{name: "privileged asks nothing", aa: on, privileged: true, want: ""},
		{name: "privileged RuntimeDefault", aa: on, structured: prof(rd, ""), privileged: true, want: ""},
		{name: "privileged Localhost", aa: on, structured: prof(lh, "k8s-deny-write"), privileged: true, want: "k8s-deny-write"},
		{name: "string runtime/default", aa: on, legacy: "runtime/default", want: "crib-default"},
		{name: "string localhost", aa: on, legacy: "localhost/k8s-deny-write", want: "k8s-deny-write"},
		{name: "string localhost not loaded", aa: on, legacy: "localhost/nope", wantErr: errdefs.ErrFailedPrecondition, errHas: `"nope"`},
		{name: "string unconfined", aa: on, legacy: "unconfined", want: ""},
		{name: "string unknown", aa: on, legacy: "docker-default", wantErr: errdefs.ErrInvalidArgument, errHas: "apparmor_profile"},
		{name: "structured wins over the string", aa: on, structured: prof(unc, ""), legacy: "localhost/nope", want: ""},
		{name: "off: nothing asked", aa: off, want: ""},
		{name: "off: nil AppArmor", aa: nil, want: ""},
		{name: "off: Unconfined", aa: off, structured: prof(unc, ""), want: ""},
		{name: "off: string unconfined", aa: off, legacy: "unconfined", want: ""},
		{name: "off: RuntimeDefault refused", aa: off, structured: prof(rd, ""), wantErr: errdefs.ErrInvalidArgument, errHas: "AppArmor is not enabled"},
		{name: "off: Localhost refused", aa: nil, structured: prof(lh, "k8s-deny-write"), wantErr: errdefs.ErrInvalidArgument, errHas: `"k8s-deny-write" cannot be applied`},
		{name: "off: string runtime/default refused", aa: off, legacy: "runtime/default", wantErr: errdefs.ErrInvalidArgument, errHas: "AppArmor is not enabled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{Command: []string{"x"}, Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					Privileged: tc.privileged, Apparmor: tc.structured, ApparmorProfile: tc.legacy,
				},
			}}
			in := testInput(t, cfg, imgspec.ImageConfig{})
			in.AppArmor = tc.aa
			spec, err := Build(in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err %v, want %v containing %q", err, tc.wantErr, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Process.ApparmorProfile != tc.want {
				t.Errorf("profile %q, want %q", spec.Process.ApparmorProfile, tc.want)
			}
		})
	}
}

func TestSandboxAppArmor(t *testing.T) {
	on := fakeAppArmor{enabled: true, loaded: []string{"crib-default", "pod-prof"}}
	tests := []struct {
		name    string
		sc      *runtimeapi.LinuxSandboxSecurityContext
		aa      AppArmor
		want    string
		wantErr error
	}{
		{"no security context", nil, on, "crib-default", nil},
		{"privileged pod", &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}, on, "", nil},
		{"pod's Localhost", &runtimeapi.LinuxSandboxSecurityContext{Apparmor: &runtimeapi.SecurityProfile{
			ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "pod-prof"}}, on, "pod-prof", nil},
		{"pod's Localhost not loaded", &runtimeapi.LinuxSandboxSecurityContext{Apparmor: &runtimeapi.SecurityProfile{
			ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "gone"}}, on, "", errdefs.ErrFailedPrecondition},
		{"pod Unconfined", &runtimeapi.LinuxSandboxSecurityContext{Apparmor: &runtimeapi.SecurityProfile{
			ProfileType: runtimeapi.SecurityProfile_Unconfined}}, on, "", nil},
		{"node without AppArmor", nil, fakeAppArmor{}, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SandboxAppArmor(tc.sc, tc.aa)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("profile %q, want %q", got, tc.want)
			}
		})
	}
}
