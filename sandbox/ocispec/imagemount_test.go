package ocispec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

func imageVolume(dst, ref, sub string) *runtimeapi.Mount {
	return &runtimeapi.Mount{ContainerPath: dst, Image: &runtimeapi.ImageSpec{Image: ref}, ImageSubPath: sub, Readonly: true}
}

func TestImageMounts(t *testing.T) {
	tests := []struct {
		name    string
		mounts  []*runtimeapi.Mount
		want    []ImageMount
		wantErr string // InvalidArgument containing this
	}{
		{name: "none", mounts: []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/"}}},
		{name: "whole image", mounts: []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/"}, imageVolume("/v", "busybox", "")},
			want: []ImageMount{{Index: 1, Image: "busybox"}}},
		{name: "sub path", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "etc/ssl/")},
			want: []ImageMount{{Index: 0, Image: "busybox", SubPath: "etc/ssl"}}},
		{name: "sub path unclean", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "./etc//ssl")},
			want: []ImageMount{{Index: 0, Image: "busybox", SubPath: "etc/ssl"}}},
		{name: "sub path dot is the root", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", ".")},
			want: []ImageMount{{Index: 0, Image: "busybox"}}},
		{name: "sub path absolute", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "/etc")}, wantErr: `mounts[0].image_sub_path "/etc" must be relative`},
		{name: "sub path climbs", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "../etc")}, wantErr: `mounts[0].image_sub_path "../etc" must not contain ".."`},
		{name: "sub path climbs inside", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "etc/../../x")}, wantErr: "mounts[0].image_sub_path"},
		{name: "sub path climbs back in", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "etc/../etc")}, wantErr: "mounts[0].image_sub_path"},
		{name: "sub path NUL", mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "etc\x00")}, wantErr: "mounts[0].image_sub_path"},
		{name: "image NUL", mounts: []*runtimeapi.Mount{imageVolume("/v", "busy\x00box", "")}, wantErr: "mounts[0].image.image"},
		{name: "relative container path", mounts: []*runtimeapi.Mount{imageVolume("v", "busybox", "")}, wantErr: "mounts[0].container_path"},
		{name: "host path too", mounts: []*runtimeapi.Mount{{ContainerPath: "/v", HostPath: "/", Image: &runtimeapi.ImageSpec{Image: "busybox"}}}, wantErr: "mounts[0]: host_path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ImageMounts(FromCRI(&runtimeapi.ContainerConfig{Mounts: tc.mounts}))
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want InvalidArgument with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ImageMounts = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBuildImageMount(t *testing.T) {
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	tests := []struct {
		name  string
		mount *runtimeapi.Mount
		want  specs.Mount
	}{
		{"read-only", imageVolume("/v", "busybox", ""),
			specs.Mount{Destination: "/v", Type: "bind", Source: "/img/rootfs", Options: []string{"rbind", "rprivate", "ro"}}},
		{"read-only though asked to write", &runtimeapi.Mount{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "busybox"}, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
			specs.Mount{Destination: "/v", Type: "bind", Source: "/img/rootfs", Options: []string{"rbind", "rprivate", "ro"}}},
		{"recursively read-only", &runtimeapi.Mount{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "busybox"}, Readonly: true, RecursiveReadOnly: true},
			specs.Mount{Destination: "/v", Type: "bind", Source: "/img/rootfs", Options: []string{"rbind", "rprivate", "rro"}}},
		{"mappings dropped", &runtimeapi.Mount{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "busybox"}, UidMappings: ids, GidMappings: ids},
			specs.Mount{Destination: "/v", Type: "bind", Source: "/img/rootfs", Options: []string{"rbind", "rprivate", "ro"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := testInput(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, Mounts: []*runtimeapi.Mount{tc.mount}}, imgspec.ImageConfig{})
			in.ImageMountSources = map[int]string{0: "/img/rootfs"}
			spec, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range spec.Mounts {
				if m.Destination == tc.want.Destination {
					if !reflect.DeepEqual(m, tc.want) {
						t.Errorf("mount %+v, want %+v", m, tc.want)
					}
					return
				}
			}
			t.Fatalf("no mount at %s in %+v", tc.want.Destination, spec.Mounts)
		})
	}
	// Build without the mounted image is the caller's bug, not the
	// request's: a plain error.
	in := testInput(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, Mounts: []*runtimeapi.Mount{imageVolume("/v", "busybox", "")}}, imgspec.ImageConfig{})
	if _, err := Build(in); err == nil || errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Build without the image mounted: %v, want a plain error", err)
	}
}
