package nri

import (
	"reflect"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/opencontainers/runtime-spec/specs-go"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
)

func TestPodSandbox(t *testing.T) {
	tests := []struct {
		name string
		pod  state.Sandbox
		want *api.PodSandbox
	}{
		{
			name: "own namespaces",
			pod: state.Sandbox{
				ID: "p1", Metadata: state.PodMetadata{Name: "web", UID: "u1", Namespace: "default"},
				Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"},
				CgroupParent: "/kubepods", CgroupsPath: "/kubepods/pod-p1",
				NetNSPath: "/run/netns/crib-p1", IPCPath: "/run/crib/pods/p1/ipc", UTSPath: "/run/crib/pods/p1/uts",
				PausePID: 42, IPs: []string{"10.0.0.2"},
			},
			want: &api.PodSandbox{
				Id: "p1", Name: "web", Uid: "u1", Namespace: "default",
				Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"},
				Linux: &api.LinuxPodSandbox{
					CgroupParent: "/kubepods", CgroupsPath: "/kubepods/pod-p1",
					Namespaces: []*api.LinuxNamespace{
						{Type: "network", Path: "/run/netns/crib-p1"},
						{Type: "ipc", Path: "/run/crib/pods/p1/ipc"},
						{Type: "uts", Path: "/run/crib/pods/p1/uts"},
					},
				},
				Pid: 42, Ips: []string{"10.0.0.2"},
			},
		},
		{
			name: "host namespaces, no network",
			pod:  state.Sandbox{ID: "p2", Metadata: state.PodMetadata{Name: "h"}},
			want: &api.PodSandbox{Id: "p2", Name: "h", Linux: &api.LinuxPodSandbox{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := podSandbox(&tc.pod)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
			// Plugins get copies: changing them does not change crib's record.
			if got.Labels != nil {
				got.Labels["app"] = "changed"
				if tc.pod.Labels["app"] != "web" {
					t.Error("the record's labels changed with the plugin's copy")
				}
			}
		})
	}
}

func TestContainer(t *testing.T) {
	created := time.Unix(100, 5)
	adj := -500
	quota := int64(20000)
	rec := state.Container{
		ID: "c1", PodID: "p1", Name: "app", Image: "busybox",
		Labels: map[string]string{"l": "1"}, Annotations: map[string]string{"from": "record"},
		CreatedAt: created, Pid: 7, User: &state.User{UID: 1000, GID: 1000},
	}
	spec := &specs.Spec{
		Annotations: map[string]string{"from": "spec", "nri.example/x": "y"},
		Process: &specs.Process{
			Args: []string{"sleep", "1"}, Env: []string{"A=1"}, OOMScoreAdj: &adj,
			User:    specs.User{UID: 1, GID: 2, AdditionalGids: []uint32{3}},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 5}},
		},
		Mounts: []specs.Mount{{Destination: "/data", Type: "bind", Source: "/src", Options: []string{"rbind"}}},
		Linux: &specs.Linux{
			CgroupsPath: "/kubepods/pod-p1/c1",
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
			Resources:   &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota}},
		},
	}
	tests := []struct {
		name  string
		spec  *specs.Spec
		check func(t *testing.T, c *api.Container)
	}{
		{name: "record alone", spec: nil, check: func(t *testing.T, c *api.Container) {
			if c.Id != "c1" || c.PodSandboxId != "p1" || c.Name != "app" || c.Pid != 7 || c.CreatedAt != created.UnixNano() {
				t.Errorf("identity: %v", c)
			}
			if c.Annotations["from"] != "record" || c.Labels["l"] != "1" || c.GetImage().GetName() != "busybox" {
				t.Errorf("annotations %v labels %v image %v", c.Annotations, c.Labels, c.Image)
			}
			if c.GetUser().GetUid() != 1000 || c.Linux != nil || c.Args != nil {
				t.Errorf("user %v linux %v args %v", c.User, c.Linux, c.Args)
			}
		}},
		{name: "with spec", spec: spec, check: func(t *testing.T, c *api.Container) {
			if want := map[string]string{"from": "spec", "nri.example/x": "y"}; !reflect.DeepEqual(c.Annotations, want) {
				t.Errorf("annotations = %v, want the spec's", c.Annotations)
			}
			if !reflect.DeepEqual(c.Args, []string{"sleep", "1"}) || !reflect.DeepEqual(c.Env, []string{"A=1"}) {
				t.Errorf("args %q env %q", c.Args, c.Env)
			}
			if len(c.Mounts) != 1 || c.Mounts[0].Destination != "/data" || c.Mounts[0].Source != "/src" {
				t.Errorf("mounts %v", c.Mounts)
			}
			if len(c.Rlimits) != 1 || c.Rlimits[0].Hard != 10 || c.GetUser().GetUid() != 1 || c.GetUser().GetAdditionalGids()[0] != 3 {
				t.Errorf("rlimits %v user %v", c.Rlimits, c.User)
			}
			l := c.GetLinux()
			if l.GetCgroupsPath() != "/kubepods/pod-p1/c1" || l.GetOomScoreAdj().GetValue() != -500 ||
				l.GetResources().GetCpu().GetQuota().GetValue() != 20000 || len(l.GetNamespaces()) != 1 {
				t.Errorf("linux %v", l)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, container(&rec, api.ContainerState_CONTAINER_CREATED, tc.spec))
		})
	}
}

func TestViewContainer(t *testing.T) {
	started, finished := time.Unix(200, 0), time.Unix(300, 0)
	tests := []struct {
		name  string
		shim  shimapi.State
		state api.ContainerState
		exit  int32
	}{
		{name: "created", shim: shimapi.State{Status: shimapi.StatusCreated}, state: api.ContainerState_CONTAINER_CREATED},
		{name: "running", shim: shimapi.State{Status: shimapi.StatusRunning, StartedAt: started}, state: api.ContainerState_CONTAINER_RUNNING},
		{name: "exited", shim: shimapi.State{Status: shimapi.StatusStopped, StartedAt: started, FinishedAt: finished, ExitCode: 3, Reason: "Error"}, state: api.ContainerState_CONTAINER_STOPPED, exit: 3},
		{name: "unknown", shim: shimapi.State{Status: shimapi.StatusUnknown}, state: api.ContainerState_CONTAINER_UNKNOWN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := sandbox.ContainerView{Container: state.Container{ID: "c"}, Shim: tc.shim}
			c := viewContainer(v, nil)
			if c.State != tc.state || c.ExitCode != tc.exit {
				t.Errorf("state %v exit %d, want %v %d", c.State, c.ExitCode, tc.state, tc.exit)
			}
			if !tc.shim.StartedAt.IsZero() && c.StartedAt != started.UnixNano() {
				t.Errorf("started_at %d", c.StartedAt)
			}
			if !tc.shim.FinishedAt.IsZero() && (c.FinishedAt != finished.UnixNano() || c.StatusReason != "Error") {
				t.Errorf("finished_at %d reason %q", c.FinishedAt, c.StatusReason)
			}
		})
	}
}
