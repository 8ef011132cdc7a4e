package ocispec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/fuzzcorpus"
)

// fuzzPod returns the pod a fuzzed container goes into; the bits of
// variant choose its shape: a pod user namespace, the systemd cgroup
// driver, host network and IPC, a cgroup v2 node.
func fuzzPod(variant uint8) *state.Sandbox {
	pod := &state.Sandbox{
		ID: "p1", Hostname: "pod-host", CgroupParent: "/kubepods/pod1",
		NetNSPath: "/var/run/netns/crib-p1", IPCPath: "/run/crib/pods/p1/ns/ipc", UTSPath: "/run/crib/pods/p1/ns/uts",
		ShmPath: "/run/crib/pods/p1/shm",
	}
	if variant&1 != 0 {
		pod.UserNSPath = "/run/crib/pods/p1/ns/user"
		pod.UIDMappings = []state.IDMapping{{ContainerID: 0, HostID: 65536, Size: 65536}}
		pod.GIDMappings = pod.UIDMappings
	}
	if variant&2 != 0 {
		pod.CgroupDriver, pod.CgroupParent = "systemd", "kubepods-besteffort-pod1.slice"
	}
	if variant&4 != 0 {
		pod.NetworkMode, pod.IPCMode = state.NamespaceNode, state.NamespaceNode
		pod.NetNSPath, pod.IPCPath, pod.UTSPath = "", "", ""
	}
	return pod
}

// fuzzSeeds are the container configs the corpus starts from: what kubelet
// sends for ordinary, hardened and privileged containers.
func fuzzSeeds() map[string]*runtimeapi.ContainerConfig {
	idmap := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 65536, Length: 65536}}
	return map[string]*runtimeapi.ContainerConfig{
		"minimal": {Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}},
		"kubelet": {
			Metadata: &runtimeapi.ContainerMetadata{Name: "web", Attempt: 1},
			Image:    &runtimeapi.ImageSpec{Image: "nginx"},
			Command:  []string{"/bin/sh", "-c"}, Args: []string{"echo $(GREETING) && sleep 1"},
			WorkingDir: "/srv",
			Envs:       []*runtimeapi.KeyValue{{Key: "GREETING", Value: []byte("hi")}, {Key: "PATH", Value: []byte("/bin")}},
			Mounts: []*runtimeapi.Mount{
				{ContainerPath: "/dev/termination-log", HostPath: "/dev/null"},
				{ContainerPath: "/data", HostPath: "/tmp", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			},
			Labels: map[string]string{"io.kubernetes.container.name": "web"}, Annotations: map[string]string{"a": "b"},
			LogPath: "web/0.log",
			Linux: &runtimeapi.LinuxContainerConfig{
				Resources: &runtimeapi.LinuxContainerResources{
					CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, OomScoreAdj: 999,
					HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}, {PageSize: "1GB"}},
					Unified:        map[string]string{"memory.high": "50000000"},
				},
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 1000},
					SupplementalGroups: []int64{44}, ReadonlyRootfs: true, NoNewPrivs: true,
					Capabilities:     &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"ALL"}},
					Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
					MaskedPaths:      []string{"/proc/kcore"},
					ReadonlyPaths:    []string{"/proc/sys"},
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				},
			},
		},
		"privileged": {
			Metadata: &runtimeapi.ContainerMetadata{Name: "priv"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Tty:      true, Stdin: true, StdinOnce: true,
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Privileged: true, RunAsUsername: "www",
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_NODE},
			}},
		},
		"idmapped": {
			Metadata: &runtimeapi.ContainerMetadata{Name: "u"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Mounts:   []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/tmp", UidMappings: idmap, GidMappings: idmap}},
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{
					Mode: runtimeapi.NamespaceMode_POD, Uids: idmap, Gids: idmap,
				}},
			}},
		},
		"image volume": {
			Metadata: &runtimeapi.ContainerMetadata{Name: "iv"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Mounts: []*runtimeapi.Mount{
				{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "nginx"}, Readonly: true},
				{ContainerPath: "/w", Image: &runtimeapi.ImageSpec{Image: "nginx"}, ImageSubPath: "usr/share", Readonly: true, UidMappings: idmap, GidMappings: idmap},
			},
		},
		"bad resources": {
			Metadata: &runtimeapi.ContainerMetadata{Name: "r"},
			Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
				CpuShares: -1, CpuQuota: -9, HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "../../x"}},
			}},
		},
	}
}

// isRequestError reports an error that blames the request (or a file it
// names), as every error Build returns must.
func isRequestError(err error) bool {
	return errors.Is(err, errdefs.ErrInvalidArgument) || errors.Is(err, errdefs.ErrNotFound) ||
		errors.Is(err, errdefs.ErrFailedPrecondition)
}

// FuzzBuild feeds Build container configs decoded from protobuf wire
// bytes, as they arrive over gRPC, into pods of several shapes. Build must
// not panic, must blame the request for every error, and a spec it returns
// must hold no resource setting checkResources refuses and must encode as
// JSON for the shim.
func FuzzBuild(f *testing.F) {
	for _, cfg := range fuzzSeeds() {
		b, err := marshalSeed(cfg)
		if err != nil {
			f.Fatal(err)
		}
		for _, v := range []uint8{0, 1, 2, 4} {
			f.Add(b, v)
		}
	}
	rootfs := fuzzRootfs(f)
	f.Fuzz(func(t *testing.T, data []byte, variant uint8) {
		cfg := &runtimeapi.ContainerConfig{}
		if err := proto.Unmarshal(data, cfg); err != nil {
			return
		}
		in := Input{
			ContainerID: strings.Repeat("c", 64), Config: FromCRI(cfg), Pod: fuzzPod(variant),
			PodFilesDir: "/var/lib/crib/pods/p1", PausePID: 4242, TargetPID: 4343,
			Image:  imgspec.ImageConfig{User: "www", Entrypoint: []string{"/bin/sh"}, Env: []string{"A=1"}, Volumes: map[string]struct{}{"/vol": {}}},
			Rootfs: rootfs, VolumeDir: "/var/lib/crib/pods/p1/c.volumes",
			CgroupV2: variant&8 != 0, HugetlbController: variant&16 != 0,
		}
		// As CreateContainer does: the image mounts are listed (and their
		// sub paths checked) first, and mounted before Build.
		vols, err := ImageMounts(in.Config)
		if err != nil {
			if !isRequestError(err) {
				t.Fatalf("ImageMounts: %v: not InvalidArgument", err)
			}
			return
		}
		for _, v := range vols {
			if in.ImageMountSources == nil {
				in.ImageMountSources = map[int]string{}
			}
			in.ImageMountSources[v.Index] = rootfs
		}
		spec, err := Build(in)
		if err != nil {
			if !isRequestError(err) {
				t.Fatalf("Build: %v: not InvalidArgument, NotFound or FailedPrecondition", err)
			}
			return
		}
		if spec.Process == nil || spec.Linux == nil || spec.Linux.Resources == nil {
			t.Fatalf("Build returned a spec without process or linux: %+v", spec)
		}
		if cpu := spec.Linux.Resources.CPU; cpu != nil {
			if cpu.Shares != nil && *cpu.Shares > maxCPUShares {
				t.Errorf("cpu shares %d passed", *cpu.Shares)
			}
			if cpu.Quota != nil && (*cpu.Quota < -1 || (*cpu.Quota > 0 && *cpu.Quota < minCPUQuota)) {
				t.Errorf("cpu quota %d passed", *cpu.Quota)
			}
			if cpu.Period != nil && (*cpu.Period < minCPUPeriod || *cpu.Period > maxCPUPeriod) {
				t.Errorf("cpu period %d passed", *cpu.Period)
			}
		}
		for _, h := range spec.Linux.Resources.HugepageLimits {
			if !hugepageSize.MatchString(h.Pagesize) {
				t.Errorf("hugepage size %q passed", h.Pagesize)
			}
		}
		if _, err := json.Marshal(spec); err != nil {
			t.Errorf("spec does not encode: %v", err)
		}
	})
}

// fuzzRootfs makes a rootfs with /etc/passwd and /etc/group once per fuzz
// target.
func fuzzRootfs(f *testing.F) string {
	root := f.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		f.Fatal(err)
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"group":  "root:x:0:\nwww:x:33:\nalice:x:1000:\nstaff:x:50:alice\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	return root
}

// TestWriteFuzzCorpus checks that every seed of fuzzSeeds is in the
// checked-in corpus testdata/fuzz/FuzzBuild, or rewrites it with
// CRIB_WRITE_FUZZ_CORPUS=1 (after changing the seeds).
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := map[string]proto.Message{}
	for name, m := range fuzzSeeds() {
		seeds[name] = m
	}
	fuzzcorpus.Check(t, "FuzzBuild", seeds, "uint8(0)")
}

// marshalSeed marshals maps in key order, so a seed's bytes are stable.
func marshalSeed(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}
