package server

import (
	"errors"
	"reflect"
	"syscall"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
)

func TestContainerRequest(t *testing.T) {
	valid := func(mut func(*runtimeapi.ContainerConfig)) *runtimeapi.ContainerConfig {
		cfg := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "web", Attempt: 2},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		}
		mut(cfg)
		return cfg
	}
	tests := []struct {
		name    string
		cfg     *runtimeapi.ContainerConfig
		wantMsg string // "" is valid
	}{
		{"valid", valid(func(*runtimeapi.ContainerConfig) {}), ""},
		{"no metadata", valid(func(c *runtimeapi.ContainerConfig) { c.Metadata = nil }), "config.metadata.name is empty"},
		{"no name", valid(func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "" }), "config.metadata.name is empty"},
		{"no image", valid(func(c *runtimeapi.ContainerConfig) { c.Image = nil }), "config.image.image is empty"},
		{"empty image", valid(func(c *runtimeapi.ContainerConfig) { c.Image.Image = "" }), "config.image.image is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := containerRequest(tc.cfg)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != tc.wantMsg {
				t.Fatalf("got %v, want InvalidArgument %q", err, tc.wantMsg)
			}
		})
	}
}

// TestContainerRequestFields: what the sandbox reads of the request is
// converted to crib's fields.
func TestContainerRequestFields(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: "web", Attempt: 2},
		Image:       &runtimeapi.ImageSpec{Image: "busybox"},
		Labels:      map[string]string{"l": "1"},
		Annotations: map[string]string{"a": "2"},
		LogPath:     "web/0.log",
		Stdin:       true,
		StdinOnce:   true,
		StopSignal:  runtimeapi.Signal_SIGNAL_SIGUSR1,
		Mounts: []*runtimeapi.Mount{{
			ContainerPath: "/data", HostPath: "/srv", Readonly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER,
		}, {
			ContainerPath: "/model", Image: &runtimeapi.ImageSpec{Image: "models:1"}, ImageSubPath: "w", Readonly: true,
		}},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "abc"},
		}},
	}
	got, err := containerRequest(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got.Spec = sandbox.ContainerRequest{}.Spec // opaque: compared by ocispec's tests
	want := sandbox.ContainerRequest{
		Name: "web", Attempt: 2, Image: "busybox",
		Labels: cfg.Labels, Annotations: cfg.Annotations,
		LogPath: "web/0.log", Stdin: true, StdinOnce: true,
		StopSignal: int(syscall.SIGUSR1), TargetID: "abc",
		Mounts: []state.Mount{{ContainerPath: "/data", HostPath: "/srv", Readonly: true,
			Propagation: int32(runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER)},
			{ContainerPath: "/model", Readonly: true, Image: "models:1", ImageSubPath: "w"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestSignalNumber(t *testing.T) {
	tests := []struct {
		sig  runtimeapi.Signal
		want int
	}{
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, 0},
		{runtimeapi.Signal_SIGNAL_SIGTERM, int(syscall.SIGTERM)},
		{runtimeapi.Signal_SIGNAL_SIGKILL, int(syscall.SIGKILL)},
		{runtimeapi.Signal_SIGNAL_SIGQUIT, int(syscall.SIGQUIT)},
		{runtimeapi.Signal_SIGNAL_SIGWINCH, int(syscall.SIGWINCH)},
		{runtimeapi.Signal(9999), 0},
	}
	for _, tc := range tests {
		if got := signalNumber(tc.sig); got != tc.want {
			t.Errorf("signalNumber(%s) = %d, want %d", tc.sig, got, tc.want)
		}
	}
}

func TestContainerStateMapping(t *testing.T) {
	for _, s := range []sandbox.ContainerState{sandbox.ContainerCreated, sandbox.ContainerRunning, sandbox.ContainerExited, sandbox.ContainerUnknown} {
		back, ok := containerState(criContainerState(s))
		if !ok || back != s {
			t.Errorf("%s: CRI %s maps back to %s, %v", s, criContainerState(s), back, ok)
		}
	}
	if _, ok := containerState(runtimeapi.ContainerState(99)); ok {
		t.Errorf("an undefined CRI state maps to a crib state")
	}
}
