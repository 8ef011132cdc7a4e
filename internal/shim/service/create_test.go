package service

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
)

// TestCheckCreateRuntime: a runtime handler's runtime must be named by
// absolute paths, so the shim never runs a binary from its own $PATH or
// working directory.
func TestCheckCreateRuntime(t *testing.T) {
	spec := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{Args: []string{"true"}},
			Root:    &specs.Root{Path: "/rootfs"},
			Linux:   &specs.Linux{CgroupsPath: "/crib/x"},
		}
	}
	cases := []struct {
		name    string
		rt      *shimapi.Runtime
		wantErr bool
	}{
		{"default handler", nil, false},
		{"handler", &shimapi.Runtime{Handler: "crun", Path: "/usr/bin/crun", Root: "/run/crib/runtimes/crun"}, false},
		{"relative path", &shimapi.Runtime{Handler: "crun", Path: "crun", Root: "/run/crib/runtimes/crun"}, true},
		{"relative root", &shimapi.Runtime{Handler: "crun", Path: "/usr/bin/crun", Root: "state"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkCreate(&shimapi.CreateRequest{ID: "x", Spec: spec(), Runtime: tc.rt})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("err %v is not InvalidArgument", err)
			}
		})
	}
}
