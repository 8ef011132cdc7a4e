package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// imageMountEnv is a rollback env whose IDs differ (the container's, then
// its image mounts'), with an image holding data/a.txt.
func imageMountEnv(t *testing.T) *rollbackEnv {
	t.Helper()
	e := newRollbackEnv(t)
	n := 0
	e.m.ids = func() (string, error) {
		n++
		return fmt.Sprintf("%064x", n), nil
	}
	e.images.ImageFiles = map[string]string{"data/a.txt": "a"}
	e.images.ImageSymlinks = map[string]string{"abs": "/etc", "up": "../..", "in": "data"}
	readyPod(t, e)
	return e
}

func imageMountRequest(sub string) ContainerRequest {
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Image:    &runtimeapi.ImageSpec{Image: "app:1"},
		Command:  []string{"true"},
		Mounts: []*runtimeapi.Mount{{
			ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "data:1"}, ImageSubPath: sub, Readonly: true,
		}},
	}
	return ContainerRequest{Name: "app", Image: "app:1", Spec: ocispec.FromCRI(cfg)}
}

// TestCreateContainerImageMountRefused: a missing image and a bad sub
// path are refused naming the field, and leave nothing: no image mount,
// no root filesystem, no record.
func TestCreateContainerImageMountRefused(t *testing.T) {
	tests := []struct {
		name     string
		sub      string
		missing  bool
		wantCode error
		wantErr  string
		// undone are the undo steps taken: none when the image is not
		// found, since nothing is acquired before.
		undone []string
	}{
		{name: "image missing", missing: true, wantCode: errdefs.ErrNotFound, wantErr: `mounts[0].image: image "data:1" is not in the store`},
		{name: "sub path missing", sub: "data/nope", wantCode: errdefs.ErrInvalidArgument, wantErr: `mounts[0].image_sub_path "data/nope" does not exist in image "data:1"`,
			undone: []string{"unmount image volume", "remove root filesystem", "remove container record", "release container name"}},
		{name: "absolute symlink", sub: "abs", wantCode: errdefs.ErrInvalidArgument, wantErr: `mounts[0].image_sub_path "abs" leads out of image "data:1"`,
			undone: []string{"unmount image volume", "remove root filesystem", "remove container record", "release container name"}},
		{name: "relative symlink out", sub: "up/x", wantCode: errdefs.ErrInvalidArgument, wantErr: `mounts[0].image_sub_path "up/x" leads out of image`,
			undone: []string{"unmount image volume", "remove root filesystem", "remove container record", "release container name"}},
		{name: "through a file", sub: "data/a.txt/x", wantCode: errdefs.ErrInvalidArgument, wantErr: `mounts[0].image_sub_path "data/a.txt/x"`,
			undone: []string{"unmount image volume", "remove root filesystem", "remove container record", "release container name"}},
		{name: "climbs", sub: "../x", wantCode: errdefs.ErrInvalidArgument, wantErr: `mounts[0].image_sub_path "../x" must not contain ".."`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := imageMountEnv(t)
			if tc.missing {
				e.images.Missing = map[string]bool{"data:1": true}
			}
			id, err := e.m.CreateContainer(context.Background(), testPodID, imageMountRequest(tc.sub))
			if !errors.Is(err, tc.wantCode) || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CreateContainer = %q, %v; want %v containing %q", id, err, tc.wantCode, tc.wantErr)
			}
			var got []string
			for _, u := range e.undone(t) {
				got = append(got, strings.Fields(u)[0]+" "+strings.Join(strings.Fields(u)[1:], " "))
			}
			if strings.Join(got, "|") != strings.Join(tc.undone, "|") {
				t.Errorf("undone %q, want %q", got, tc.undone)
			}
			e.checkNothingHeld(t)
			if len(e.m.containers.List()) > 0 {
				t.Errorf("containers left in the index")
			}
		})
	}
}

// TestImageMountLifecycle: the image mount is recorded, bound read-only
// from the resolved sub path, and gone after RemoveContainer; a record a
// crash left marked creating is undone with its image mount.
func TestImageMountLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name, sub, wantRel string
		crash              bool
	}{
		{name: "whole image", wantRel: ""},
		{name: "sub path", sub: "data", wantRel: "data"},
		{name: "file through a symlink inside", sub: "in/a.txt", wantRel: "data/a.txt"},
		{name: "undone after a crash", sub: "data", wantRel: "data", crash: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := imageMountEnv(t)
			id, err := e.m.CreateContainer(context.Background(), testPodID, imageMountRequest(tc.sub))
			if err != nil {
				t.Fatal(err)
			}
			v, err := e.m.Container(id)
			if err != nil {
				t.Fatal(err)
			}
			if len(v.ImageMounts) != 1 || v.ImageMounts[0].Image != "data:1" || v.ImageMounts[0].Index != 0 || v.ImageMounts[0].ID == id {
				t.Fatalf("record's image mounts %+v", v.ImageMounts)
			}
			mnt, ok := e.images.RootfsDirs[v.ImageMounts[0].ID]
			if !ok {
				t.Fatalf("image mount %s not in the store: %v", v.ImageMounts[0].ID, e.images.RootfsDirs)
			}
			var spec specs.Spec
			if err := state.ReadJSON(e.m.specPath(testPodID, id), &spec); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range spec.Mounts {
				if m.Destination == "/v" {
					found = true
					if want := filepath.Join(mnt, tc.wantRel); m.Source != want || strings.Join(m.Options, ",") != "rbind,rprivate,ro" {
						t.Errorf("mount %+v, want source %s, read-only", m, want)
					}
				}
			}
			if !found {
				t.Fatalf("no mount at /v: %+v", spec.Mounts)
			}
			// The fake shim's container is the test's sleeper, which is
			// not the removal's to kill.
			c, _ := e.m.lookupContainer(id)
			c.rec.Pid, c.rec.PidStartTime = 0, 0
			if tc.crash {
				c.rec.Creating = true
				e.m.FinishPending()
			} else if err := e.m.RemoveContainer(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			e.checkNothingHeld(t)
			if _, err := os.Stat(mnt); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("image mount %s left: %v", mnt, err)
			}
		})
	}
}
