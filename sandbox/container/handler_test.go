package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
)

func TestRuntimeOf(t *testing.T) {
	crun := Handler{Runtime: shimapi.Runtime{Handler: "crun", Path: "/usr/bin/crun", Root: "/run/crib/runtimes/crun"}}
	m := &Manager{opts: Config{Handlers: map[string]Handler{"crun": crun}}}
	cases := []struct {
		handler string
		want    *shimapi.Runtime
		wantErr error
	}{
		{"", nil, nil},
		{"crun", &crun.Runtime, nil},
		{"gone", nil, errdefs.ErrFailedPrecondition},
	}
	for _, tc := range cases {
		t.Run(tc.handler, func(t *testing.T) {
			h, err := m.runtimeOf(&state.Sandbox{ID: "p", RuntimeHandler: tc.handler})
			if !errors.Is(err, tc.wantErr) && (err != nil || tc.wantErr != nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			got := handlerRuntime(h)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("runtime %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCheckHandlerMounts(t *testing.T) {
	rro := &specs.Spec{Mounts: []specs.Mount{{Destination: "/proc"}, {Destination: "/data", Options: []string{"rbind", "rprivate", "rro"}}}}
	plain := &specs.Spec{Mounts: []specs.Mount{{Destination: "/data", Options: []string{"rbind", "ro"}}}}
	without := &Handler{Runtime: shimapi.Runtime{Handler: "crun"}}
	with := &Handler{Runtime: shimapi.Runtime{Handler: "runc"}, RecursiveReadOnlyMounts: true}
	cases := []struct {
		name    string
		h       *Handler
		spec    *specs.Spec
		wantErr bool
	}{
		{"default handler", nil, rro, false},
		{"handler with rro", with, rro, false},
		{"handler without rro, no rro mount", without, plain, false},
		{"handler without rro", without, rro, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkHandlerMounts(tc.h, tc.spec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("err %v is not FailedPrecondition", err)
			}
		})
	}
}

// TestDeleteInRuntime: without a shim, cribd deletes a handler's container
// through the runtime only when the runtime's state root holds it.
func TestDeleteInRuntime(t *testing.T) {
	root := t.TempDir()
	log := filepath.Join(t.TempDir(), "args")
	bin := filepath.Join(t.TempDir(), "fake-runtime")
	script := "#!/bin/sh\necho \"$@\" > " + log + "\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Runtime: shimapi.Runtime{Handler: "fake", Path: bin, Root: root}}
	if err := deleteInRuntime(context.Background(), nil, "x"); err != nil {
		t.Errorf("default handler: %v", err)
	}
	if err := deleteInRuntime(context.Background(), h, "gone"); err != nil {
		t.Errorf("unknown to the runtime: %v", err)
	}
	if _, err := os.Stat(log); err == nil {
		t.Error("the runtime ran for a container it does not hold")
	}
	if err := os.Mkdir(filepath.Join(root, "held"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := deleteInRuntime(context.Background(), h, "held"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(log); strings.TrimSpace(string(got)) != "--root "+root+" delete --force held" {
		t.Errorf("runtime ran with %q", got)
	}
}
