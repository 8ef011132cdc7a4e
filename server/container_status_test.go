package server

import (
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

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
