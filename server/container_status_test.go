package server

import (
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
)

func TestContainerStatusUser(t *testing.T) {
	tests := []struct {
		name string
		user *state.User
		want *runtimeapi.ContainerUser
	}{
		{"not recorded (a record from an older crib)", nil, nil},
		{
			"uid, gid and groups",
			&state.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 1234, 50000}},
			&runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: 1000, Gid: 1000, SupplementalGroups: []int64{1000, 1234, 50000}}},
		},
		{
			"root without groups",
			&state.User{},
			&runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := sandbox.ContainerView{Container: state.Container{ID: "c", User: tc.user}}
			if got := containerStatus(v).GetUser(); !proto.Equal(got, tc.want) {
				t.Errorf("user = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestContainerStatusImageMount: an image volume is reported with its
// image and sub path, a host path mount without an image.
func TestContainerStatusImageMount(t *testing.T) {
	v := sandbox.ContainerView{Container: state.Container{ID: "c", Mounts: []state.Mount{
		{ContainerPath: "/data", HostPath: "/srv"},
		{ContainerPath: "/model", Readonly: true, Image: "models:1", ImageSubPath: "w"},
	}}}
	want := []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: "/srv"},
		{ContainerPath: "/model", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "models:1"}, ImageSubPath: "w"},
	}
	got := containerStatus(v).GetMounts()
	if len(got) != len(want) {
		t.Fatalf("mounts %v, want %v", got, want)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("mounts[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestContainerStatusExit(t *testing.T) {
	tests := []struct {
		name                string
		shim                shimapi.State
		wantCode            int32
		wantReason, wantMsg string
	}{
		{"completed", shimapi.State{Status: shimapi.StatusStopped}, 0, "Completed", ""},
		{"error", shimapi.State{Status: shimapi.StatusStopped, ExitCode: 3}, 3, "Error", ""},
		{"OOM killed", shimapi.State{Status: shimapi.StatusStopped, ExitCode: 137, OOMKilled: true}, 137, "OOMKilled", ""},
		{
			"shim died: cribd's reason and message",
			shimapi.State{Status: shimapi.StatusStopped, ExitCode: 255, Reason: sandbox.ShimDiedReason, Message: "crib-shim (pid 9) exited"},
			255, "ShimDied", "crib-shim (pid 9) exited",
		},
		{"running: no exit", shimapi.State{Status: shimapi.StatusRunning, Reason: "ignored"}, 0, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := containerStatus(sandbox.ContainerView{Container: state.Container{ID: "c"}, Shim: tc.shim})
			if st.GetExitCode() != tc.wantCode || st.GetReason() != tc.wantReason || st.GetMessage() != tc.wantMsg {
				t.Errorf("exit %d reason %q message %q, want %d %q %q", st.GetExitCode(), st.GetReason(), st.GetMessage(), tc.wantCode, tc.wantReason, tc.wantMsg)
			}
		})
	}
}
