package service

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/reaper"
)

// TestContainerLookupErrors: every method that names a container answers
// an unknown one, and one deleted while the call waited for its lock, with
// the error it always did: NotFound, or FailedPrecondition "not running"
// for the calls that need the container's processes; Delete of either
// succeeds.
func TestContainerLookupErrors(t *testing.T) {
	s := &Shim{reaper: reaper.New(), containers: map[string]*container{}, exit: make(chan struct{})}
	s.containers["gone"] = &container{id: "gone", deleted: true, exited: make(chan struct{})}
	empty := &shimapi.Empty{}
	calls := map[string]func(id string) error{
		"Start":  func(id string) error { return s.Start(&shimapi.IDRequest{ID: id}, empty) },
		"Kill":   func(id string) error { return s.Kill(&shimapi.KillRequest{ID: id, Signal: 9}, empty) },
		"State":  func(id string) error { return s.State(&shimapi.IDRequest{ID: id}, &shimapi.State{}) },
		"Delete": func(id string) error { return s.Delete(&shimapi.IDRequest{ID: id}, empty) },
		"Update": func(id string) error {
			return s.Update(&shimapi.UpdateRequest{ID: id, Resources: &specs.LinuxResources{}}, empty)
		},
		"UpdateNil": func(id string) error { return s.Update(&shimapi.UpdateRequest{ID: id}, empty) },
		"Exec": func(id string) error {
			return s.Exec(&shimapi.ExecRequest{ID: id, Args: []string{"true"}}, &shimapi.ExecResponse{})
		},
		"ExecStart": func(id string) error {
			return s.ExecStart(&shimapi.ExecStartRequest{ID: id, Args: []string{"true"}}, &shimapi.ExecStartResponse{})
		},
		"Attach": func(id string) error {
			return s.Attach(&shimapi.AttachRequest{ID: id, Stdout: true}, &shimapi.AttachResponse{})
		},
		"Resize": func(id string) error { return s.Resize(&shimapi.ResizeRequest{ID: id, Width: 1, Height: 1}, empty) },
		"Reopen": func(id string) error { return s.ReopenLog(&shimapi.IDRequest{ID: id}, empty) },
	}
	for _, tc := range []struct {
		call, id string
		want     error // nil: success
		text     string
	}{
		{"Start", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"Start", "gone", errdefs.ErrNotFound, "container gone: not found"},
		{"Kill", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"Kill", "gone", errdefs.ErrNotFound, "container gone: not found"},
		{"State", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"Delete", "nope", nil, ""},
		{"Delete", "gone", nil, ""},
		{"Update", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"Update", "gone", errdefs.ErrFailedPrecondition, "container gone is not running: failed precondition"},
		{"UpdateNil", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"UpdateNil", "gone", nil, ""},
		{"Exec", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"Exec", "gone", errdefs.ErrFailedPrecondition, "container gone is not running: failed precondition"},
		{"ExecStart", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"ExecStart", "gone", errdefs.ErrFailedPrecondition, "container gone is not running: failed precondition"},
		{"Attach", "nope", errdefs.ErrNotFound, "attach: container nope: not found"},
		{"Attach", "gone", errdefs.ErrNotFound, "attach: container gone: not found"},
		{"Resize", "nope", errdefs.ErrNotFound, "resize: container nope: not found"},
		{"Resize", "gone", errdefs.ErrNotFound, "resize: container gone: not found"},
		{"Reopen", "nope", errdefs.ErrNotFound, "container nope: not found"},
		{"Reopen", "gone", errdefs.ErrFailedPrecondition, "container gone has no log: failed precondition"},
	} {
		t.Run(tc.call+"/"+tc.id, func(t *testing.T) {
			err := calls[tc.call](tc.id)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("%v, want success", err)
			case tc.want != nil && (!errors.Is(err, tc.want) || err.Error() != tc.text):
				t.Errorf("%v, want %q (%v)", err, tc.text, tc.want)
			}
		})
	}
}
