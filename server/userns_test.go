package server

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/state"
)

func TestPodUserNS(t *testing.T) {
	one := func(c, h, l uint32) []*runtimeapi.IDMapping {
		return []*runtimeapi.IDMapping{{ContainerId: c, HostId: h, Length: l}}
	}
	pod := func(u *runtimeapi.UserNamespace) *runtimeapi.NamespaceOption {
		return &runtimeapi.NamespaceOption{UsernsOptions: u}
	}
	podNS := func(uids, gids []*runtimeapi.IDMapping) *runtimeapi.UserNamespace {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: uids, Gids: gids}
	}
	tests := []struct {
		name     string
		opts     *runtimeapi.NamespaceOption
		wantUIDs []state.IDMapping
		wantGIDs []state.IDMapping
		wantErr  string
	}{
		{name: "no option", opts: nil},
		{name: "node", opts: pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE})},
		{
			name: "pod", opts: pod(podNS(one(0, 65536, 65536), one(0, 131072, 65536))),
			wantUIDs: []state.IDMapping{{HostID: 65536, Size: 65536}}, wantGIDs: []state.IDMapping{{HostID: 131072, Size: 65536}},
		},
		{name: "node with mappings", opts: pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: one(0, 1000, 10)}), wantErr: "mode NODE uses the host's"},
		{name: "container", opts: pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}), wantErr: "mode CONTAINER is not supported"},
		{name: "target", opts: pod(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}), wantErr: "mode TARGET is not supported"},
		{name: "two uid mappings", opts: pod(podNS(append(one(0, 1000, 10), one(10, 2000, 10)...), one(0, 1000, 10))), wantErr: "uids: mode POD takes exactly one mapping, got 2"},
		{name: "no gid mapping", opts: pod(podNS(one(0, 1000, 10), nil)), wantErr: "gids: mode POD takes exactly one mapping, got 0"},
		{name: "root unmapped", opts: pod(podNS(one(1, 1000, 10), one(0, 1000, 10))), wantErr: "uids[0].container_id is 1"},
		{name: "empty range", opts: pod(podNS(one(0, 1000, 0), one(0, 1000, 10))), wantErr: "uids[0].length is 0"},
		{name: "host root", opts: pod(podNS(one(0, 1000, 10), one(0, 0, 10))), wantErr: "gids[0].host_id is 0"},
		{name: "past the top", opts: pod(podNS(one(0, 1<<32-10, 65536), one(0, 1000, 10))), wantErr: "run past the largest ID"},
		{
			name:    "host network",
			opts:    &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, UsernsOptions: podNS(one(0, 1000, 10), one(0, 1000, 10))},
			wantErr: "host's network namespace",
		},
		{
			name:    "host pid",
			opts:    &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE, UsernsOptions: podNS(one(0, 1000, 10), one(0, 1000, 10))},
			wantErr: "host's pid namespace",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uids, gids, err := podUserNS(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || Code(err) != codes.InvalidArgument {
					t.Fatalf("err %v (code %v), want InvalidArgument containing %q", err, Code(err), tc.wantErr)
				}
				if !strings.Contains(err.Error(), usernsField) {
					t.Errorf("error %q does not name %s", err, usernsField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(uids, tc.wantUIDs) || !reflect.DeepEqual(gids, tc.wantGIDs) {
				t.Errorf("got uids %v gids %v, want %v %v", uids, gids, tc.wantUIDs, tc.wantGIDs)
			}
			// Status reports what was asked.
			got := criUserNS(uids, gids)
			want := tc.opts.GetUsernsOptions()
			if want == nil {
				want = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
			}
			if got.GetMode() != want.GetMode() || !reflect.DeepEqual(got.GetUids(), want.GetUids()) && len(want.GetUids()) > 0 {
				t.Errorf("status reports %v, want %v", got, want)
			}
		})
	}
}
