package ocispec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

// testRootfs makes a rootfs with an /etc/passwd and /etc/group.
func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
	group := "root:x:0:\nwww:x:33:\nalice:x:1000:\nstaff:x:50:alice\nvideo:x:44:alice,www\n"
	for name, body := range map[string]string{"passwd": passwd, "group": group} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func testInput(t *testing.T, cfg *runtimeapi.ContainerConfig, img imgspec.ImageConfig) Input {
	return Input{
		ContainerID: "c1",
		Config:      FromCRI(cfg),
		Pod: &state.Sandbox{
			ID: "p1", Hostname: "pod-host", CgroupParent: "/kubepods/pod1",
			NetNSPath: "/var/run/netns/crib-p1", IPCPath: "/run/crib/pods/p1/ns/ipc", UTSPath: "/run/crib/pods/p1/ns/uts",
			ShmPath: "/run/crib/pods/p1/shm",
		},
		PodFilesDir: "/var/lib/crib/pods/p1",
		PausePID:    4242,
		Image:       img,
		Rootfs:      testRootfs(t),
	}
}

func TestProcessArgs(t *testing.T) {
	img := imgspec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"c1", "c2"}}
	tests := []struct {
		name          string
		command, args []string
		img           imgspec.ImageConfig
		want          []string
		wantErr       bool
	}{
		{"image only", nil, nil, img, []string{"/ep", "c1", "c2"}, false},
		{"args replace cmd", nil, []string{"a"}, img, []string{"/ep", "a"}, false},
		{"command replaces both", []string{"/bin/sh"}, nil, img, []string{"/bin/sh"}, false},
		{"command and args", []string{"/bin/sh"}, []string{"-c", "x"}, img, []string{"/bin/sh", "-c", "x"}, false},
		{"cmd only image", nil, nil, imgspec.ImageConfig{Cmd: []string{"sh"}}, []string{"sh"}, false},
		{"nothing at all", nil, nil, imgspec.ImageConfig{}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := processArgs(tc.command, tc.args, tc.img)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1", "B=2"}, []*runtimeapi.KeyValue{{Key: "B", Value: []byte("3")}, {Key: "C", Value: []byte("4")}})
	want := []string{"PATH=/bin", "A=1", "B=3", "C=4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := mergeEnv(nil, nil); len(got) != 1 || got[0] != defaultPath {
		t.Errorf("no PATH anywhere: got %q", got)
	}
}

func TestResolveUser(t *testing.T) {
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	tests := []struct {
		name    string
		image   string
		sc      *runtimeapi.LinuxContainerSecurityContext
		want    specs.User
		wantErr string
	}{
		{"default root", "", nil, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}, ""},
		{"image user by name", "www", nil, specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{33, 44}}, ""},
		{"image user:group", "alice:www", nil, specs.User{UID: 1000, GID: 33, AdditionalGids: []uint32{33, 50, 44}}, ""},
		{"run_as_user overrides image", "www", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000)},
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 50, 44}}, ""},
		{"run_as_username", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "alice", RunAsGroup: i64(7)},
			specs.User{UID: 1000, GID: 7, AdditionalGids: []uint32{7, 50, 44}}, ""},
		{"uid unknown to passwd", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(5000)},
			specs.User{UID: 5000, GID: 0, AdditionalGids: []uint32{0}}, ""},
		{"supplemental groups, strict", "alice", &runtimeapi.LinuxContainerSecurityContext{
			SupplementalGroups: []int64{99}, SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict},
			specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 99}}, ""},
		{"unknown username", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "bob"}, specs.User{}, "run_as_username"},
		{"group without user", "www", &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: i64(7)}, specs.User{}, "run_as_group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: tc.sc}}
			got, err := resolveUser(testInput(t, cfg, imgspec.ImageConfig{User: tc.image}))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err %v, want InvalidArgument naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	has := func(set []string, c string) bool {
		for _, x := range set {
			if x == c {
				return true
			}
		}
		return false
	}
	caps, err := capabilities(false, &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"cap_chown"}})
	if err != nil {
		t.Fatal(err)
	}
	if !has(caps.Bounding, "CAP_NET_ADMIN") || has(caps.Bounding, "CAP_CHOWN") || !has(caps.Effective, "CAP_KILL") {
		t.Errorf("add/drop: %v", caps.Bounding)
	}
	caps, _ = capabilities(false, &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"KILL"}})
	if has(caps.Bounding, "CAP_CHOWN") {
		t.Errorf("drop ALL kept CAP_CHOWN: %v", caps.Bounding)
	}
	caps, _ = capabilities(true, nil)
	if !has(caps.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("privileged lacks CAP_SYS_ADMIN")
	}
	if _, err := capabilities(false, &runtimeapi.Capability{AddCapabilities: []string{"FLY"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestBuild(t *testing.T) {
	hostDir := t.TempDir()
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
		Command:  []string{"/bin/httpd"},
		Mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: hostDir, Readonly: true}},
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20, CpuShares: 512, OomScoreAdj: -998},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
	in := testInput(t, cfg, imgspec.ImageConfig{WorkingDir: "/srv"})
	spec, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Process.Cwd != "/srv" || spec.Hostname != "pod-host" || spec.Linux.CgroupsPath != "/kubepods/pod1/c1" {
		t.Errorf("cwd %q hostname %q cgroups %q", spec.Process.Cwd, spec.Hostname, spec.Linux.CgroupsPath)
	}
	if *spec.Linux.Resources.Memory.Limit != 32<<20 || *spec.Linux.Resources.Memory.Swap != 32<<20 {
		t.Errorf("memory %+v: swap must equal the limit", spec.Linux.Resources.Memory)
	}
	if *spec.Process.OOMScoreAdj != 0 {
		t.Errorf("oom_score_adj %d, want clamped to the floor 0", *spec.Process.OOMScoreAdj)
	}
	wantNS := map[specs.LinuxNamespaceType]string{
		specs.MountNamespace: "", specs.NetworkNamespace: in.Pod.NetNSPath, specs.IPCNamespace: in.Pod.IPCPath,
		specs.UTSNamespace: in.Pod.UTSPath, specs.PIDNamespace: "",
	}
	if len(spec.Linux.Namespaces) != len(wantNS) {
		t.Errorf("namespaces %+v", spec.Linux.Namespaces)
	}
	for _, ns := range spec.Linux.Namespaces {
		if p, ok := wantNS[ns.Type]; !ok || p != ns.Path {
			t.Errorf("namespace %s path %q, want %q", ns.Type, ns.Path, p)
		}
	}
	mounts := map[string]specs.Mount{}
	for i, m := range spec.Mounts {
		mounts[m.Destination] = m
		if i > 0 && depth(spec.Mounts[i-1].Destination) > depth(m.Destination) {
			t.Errorf("mount %s comes after deeper %s", m.Destination, spec.Mounts[i-1].Destination)
		}
	}
	if m := mounts["/data"]; m.Source != hostDir || !reflect.DeepEqual(m.Options, []string{"rbind", "rprivate", "ro"}) {
		t.Errorf("/data mount %+v", m)
	}
	if m := mounts["/dev/shm"]; m.Source != in.Pod.ShmPath {
		t.Errorf("/dev/shm from %q, want the pod's", m.Source)
	}
	if m := mounts["/etc/resolv.conf"]; m.Source != "/var/lib/crib/pods/p1/resolv.conf" {
		t.Errorf("/etc/resolv.conf from %q", m.Source)
	}
	if spec.Linux.Seccomp != nil {
		t.Errorf("unprivileged container: seccomp %v (no profile requested)", spec.Linux.Seccomp)
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name    string
		cfg     *runtimeapi.ContainerConfig
		wantErr string
	}{
		{"missing host path", &runtimeapi.ContainerConfig{Command: []string{"x"},
			Mounts: []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/nonexistent/crib/path"}}}, `mounts[0].host_path "/nonexistent/crib/path" does not exist`},
		{"relative container path", &runtimeapi.ContainerConfig{Command: []string{"x"},
			Mounts: []*runtimeapi.Mount{{ContainerPath: "d", HostPath: "/"}}}, "mounts[0].container_path"},
		{"rro without ro", &runtimeapi.ContainerConfig{Command: []string{"x"},
			Mounts: []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/", RecursiveReadOnly: true}}}, "recursive_read_only"},
		{"apparmor profile", &runtimeapi.ContainerConfig{Command: []string{"x"}, Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{
				ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "k8s-deny"}}}}, "apparmor"},
		{"swap below limit", &runtimeapi.ContainerConfig{Command: []string{"x"}, Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 100, MemorySwapLimitInBytes: 50}}}, "memory_swap_limit_in_bytes"},
		{"not a device", &runtimeapi.ContainerConfig{Command: []string{"x"},
			Devices: []*runtimeapi.Device{{HostPath: "/etc/passwd", ContainerPath: "/dev/x"}}}, "devices[0].host_path"},
		{"relative working dir", &runtimeapi.ContainerConfig{Command: []string{"x"}, WorkingDir: "srv"}, "working_dir"},
		// Found by FuzzBuild (testdata/fuzz/FuzzBuild/crash-nul-in-host-path):
		// stat refused the path with EINVAL, a plain error.
		{"NUL in host path", &runtimeapi.ContainerConfig{Command: []string{"x"},
			Mounts: []*runtimeapi.Mount{{ContainerPath: "/d", HostPath: "/tmp\x00x"}}}, "mounts[0].host_path"},
		{"NUL in container path", &runtimeapi.ContainerConfig{Command: []string{"x"},
			Mounts: []*runtimeapi.Mount{{ContainerPath: "/d\x00", HostPath: "/"}}}, "mounts[0].container_path"},
		{"NUL in args", &runtimeapi.ContainerConfig{Command: []string{"x"}, Args: []string{"a\x00b"}}, "args[0]"},
		{"NUL in env", &runtimeapi.ContainerConfig{Command: []string{"x"}, Envs: []*runtimeapi.KeyValue{{Key: "A", Value: []byte("\x00")}}}, "envs[0].value"},
		{"= in env key", &runtimeapi.ContainerConfig{Command: []string{"x"}, Envs: []*runtimeapi.KeyValue{{Key: "A=B", Value: []byte("c")}}}, "envs[0].key"},
		{"NUL in working dir", &runtimeapi.ContainerConfig{Command: []string{"x"}, WorkingDir: "/srv\x00"}, "working_dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(testInput(t, tc.cfg, imgspec.ImageConfig{}))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err %v, want InvalidArgument containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaultSeccomp(t *testing.T) {
	denied := func(p *specs.LinuxSeccomp, name string) bool {
		for _, sc := range p.Syscalls {
			for _, n := range sc.Names {
				if n == name && len(sc.Args) == 0 && sc.Action == specs.ActErrno {
					return true
				}
			}
		}
		return false
	}
	plain := DefaultSeccomp(DefaultCapabilities)
	admin := DefaultSeccomp(append([]string{"CAP_SYS_ADMIN"}, DefaultCapabilities...))
	tests := []struct {
		name    string
		prof    *specs.LinuxSeccomp
		syscall string
		want    bool
	}{
		{"kexec always", admin, "kexec_load", true},
		{"mount without SYS_ADMIN", plain, "mount", true},
		{"mount with SYS_ADMIN", admin, "mount", false},
		{"clone3 without SYS_ADMIN", plain, "clone3", true},
		{"chroot with default caps", plain, "chroot", false},
		{"read", plain, "read", false},
	}
	for _, tc := range tests {
		if got := denied(tc.prof, tc.syscall); got != tc.want {
			t.Errorf("%s: denied=%v, want %v", tc.name, got, tc.want)
		}
	}
	if plain.DefaultAction != specs.ActAllow {
		t.Errorf("default action %s", plain.DefaultAction)
	}
}

func TestImageVolumes(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{Command: []string{"x"}, Mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: t.TempDir()}}}
	in := testInput(t, cfg, imgspec.ImageConfig{Volumes: map[string]struct{}{"/data": {}, "/var/cache/": {}, "/logs": {}}})
	in.VolumeDir = "/vols"
	got := ImageVolumes(in)
	want := []ImageVolume{{Path: "/logs", Source: "/vols/0"}, {Path: "/var/cache", Source: "/vols/1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v (a request mount covers /data)", got, want)
	}
	spec, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range spec.Mounts {
		if m.Destination == "/logs" && m.Source == "/vols/0" || m.Destination == "/var/cache" && m.Source == "/vols/1" {
			found++
		}
	}
	if found != 2 {
		t.Errorf("image volumes not mounted: %+v", spec.Mounts)
	}
	in.VolumeDir = ""
	if len(ImageVolumes(in)) != 0 {
		t.Errorf("volumes without a VolumeDir")
	}
}

func TestHugepageLimits(t *testing.T) {
	r := &runtimeapi.LinuxContainerResources{HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}}}
	for _, hugetlb := range []bool{false, true} {
		res, err := Resources(r, hugetlb)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.HugepageLimits); got != map[bool]int{false: 0, true: 1}[hugetlb] {
			t.Errorf("hugetlb controller %v: %d limits", hugetlb, got)
		}
	}
}

func TestCheckUserNS(t *testing.T) {
	podMaps := []state.IDMapping{{HostID: 65536, Size: 65536}}
	userPod := &state.Sandbox{ID: "p1", UserNSPath: "/run/crib/pods/p1/ns/user", UIDMappings: podMaps, GIDMappings: podMaps}
	hostPod := &state.Sandbox{ID: "p2"}
	cri := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	other := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 131072, Length: 65536}}
	cfg := func(u *runtimeapi.UserNamespace, mounts ...*runtimeapi.Mount) *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Mounts: mounts, Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: u}},
		}}
	}
	podNS := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: cri, Gids: cri}
	nodeNS := &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	idmapped := &runtimeapi.Mount{ContainerPath: "/data", HostPath: "/tmp", UidMappings: cri, GidMappings: cri}
	tests := []struct {
		name    string
		cfg     *runtimeapi.ContainerConfig
		pod     *state.Sandbox
		wantErr string
	}{
		{"pod's own", cfg(podNS, idmapped), userPod, ""},
		{"unset in a user namespace pod", cfg(nil), userPod, ""},
		{"node in a host pod", cfg(nodeNS), hostPod, ""},
		{"unset in a host pod", cfg(nil), hostPod, ""},
		{"node in a user namespace pod", cfg(nodeNS), userPod, "mode is NODE but pod p1 uses POD"},
		{"pod in a host pod", cfg(podNS), hostPod, "mode is POD but pod p2 uses NODE"},
		{"other mappings", cfg(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: cri, Gids: other}), userPod, "differ from the mappings of pod p1"},
		{"idmapped mount in a host pod", cfg(nil, idmapped), hostPod, "mounts[0]: uid_mappings and gid_mappings need a pod user namespace"},
		{"image mount with the pod's mappings", cfg(nil, &runtimeapi.Mount{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "busybox"}, UidMappings: cri, GidMappings: cri}), userPod, ""},
		{"image mount without mappings", cfg(nil, &runtimeapi.Mount{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "busybox"}}), userPod, ""},
		{"image mount with other mappings", cfg(nil, &runtimeapi.Mount{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "busybox"}, UidMappings: cri, GidMappings: other}), userPod, "mounts[0]: an image mount's uid_mappings and gid_mappings must be those of pod p1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUserNS(FromCRI(tc.cfg), tc.pod)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestBuildInPodUserNS(t *testing.T) {
	cri := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	cfg := &runtimeapi.ContainerConfig{
		Command: []string{"/bin/true"},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/data", HostPath: t.TempDir(), UidMappings: cri, GidMappings: cri},
			{ContainerPath: "/plain", HostPath: t.TempDir()},
		},
	}
	in := testInput(t, cfg, imgspec.ImageConfig{Volumes: map[string]struct{}{"/vol": {}}})
	in.VolumeDir = "/var/lib/crib/pods/p1/c1-volumes"
	in.Pod.UserNSPath = "/run/crib/pods/p1/ns/user"
	spec, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var userns string
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			userns = ns.Path
		}
	}
	if userns != in.Pod.UserNSPath {
		t.Errorf("user namespace %q, want the pod's %q", userns, in.Pod.UserNSPath)
	}
	if spec.Linux.UIDMappings != nil || spec.Linux.GIDMappings != nil {
		t.Errorf("spec carries mappings besides the namespace path: %v %v", spec.Linux.UIDMappings, spec.Linux.GIDMappings)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 65536, Size: 65536}}
	seen := map[string]bool{}
	for _, m := range spec.Mounts {
		seen[m.Destination] = true
		idmap := slices.Contains(m.Options, "idmap")
		switch m.Destination {
		case "/data":
			if !reflect.DeepEqual(m.UIDMappings, want) || !reflect.DeepEqual(m.GIDMappings, want) || idmap {
				t.Errorf("/data: mappings %v %v options %v, want the request's mappings", m.UIDMappings, m.GIDMappings, m.Options)
			}
		case "/plain":
			if m.UIDMappings != nil || idmap {
				t.Errorf("/plain is idmapped, but the request did not ask: %+v", m)
			}
		case "/dev/shm":
			if idmap {
				t.Errorf("/dev/shm is idmapped (tmpfs needs Linux 6.3 for that; the pod's tmpfs is its root's): %v", m.Options)
			}
		case "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/vol":
			if !idmap {
				t.Errorf("%s is crib's own bind but not idmapped to the pod: %v", m.Destination, m.Options)
			}
		}
	}
	for _, d := range []string{"/data", "/plain", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/dev/shm", "/vol"} {
		if !seen[d] {
			t.Errorf("no mount at %s", d)
		}
	}

	cfg.Mounts[0].GidMappings = nil
	if _, err := Build(in); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "mounts[0]: uid_mappings and gid_mappings go together") {
		t.Errorf("mount with UID mappings only: got %v, want InvalidArgument", err)
	}
}

func TestCgroupNamespace(t *testing.T) {
	tests := []struct {
		name       string
		cgroupV2   bool
		privileged bool
		want       bool
	}{
		{"cgroup v1", false, false, false},
		{"cgroup v1, privileged", false, true, false},
		{"cgroup v2", true, false, true},
		{"cgroup v2, privileged keeps the host's view", true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
				Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					Privileged: tc.privileged,
				}},
			}
			in := testInput(t, cfg, imgspec.ImageConfig{Cmd: []string{"sh"}})
			in.CgroupV2 = tc.cgroupV2
			spec, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.ContainsFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
				return ns.Type == specs.CgroupNamespace && ns.Path == ""
			})
			if got != tc.want {
				t.Errorf("new cgroup namespace = %v, want %v (namespaces %v)", got, tc.want, spec.Linux.Namespaces)
			}
			// /sys/fs/cgroup is mounted either way; libcontainer mounts
			// cgroup2 there on a v2 node, the v1 hierarchies on v1.
			if !slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool {
				return m.Destination == "/sys/fs/cgroup" && m.Type == "cgroup"
			}) {
				t.Errorf("no cgroup mount at /sys/fs/cgroup: %v", spec.Mounts)
			}
		})
	}
}

// TestCgroupsPathPerDriver: a container's cgroup sits beside the pause
// process's in the pod's parent: a path under cgroupfs, runc's
// slice:crib:id (scope crib-<id>.scope) under systemd.
func TestCgroupsPathPerDriver(t *testing.T) {
	for _, tc := range []struct {
		driver, parent, want string
	}{
		{"", "/kubepods/pod1", "/kubepods/pod1/c1"},
		{"cgroupfs", "/crib", "/crib/c1"},
		{"systemd", "kubepods-besteffort-pod1.slice", "kubepods-besteffort-pod1.slice:crib:c1"},
	} {
		in := testInput(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Command: []string{"/x"}}, imgspec.ImageConfig{})
		in.Pod.CgroupDriver, in.Pod.CgroupParent = tc.driver, tc.parent
		spec, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Linux.CgroupsPath != tc.want {
			t.Errorf("driver %q parent %q: cgroupsPath %q, want %q", tc.driver, tc.parent, spec.Linux.CgroupsPath, tc.want)
		}
	}
}
