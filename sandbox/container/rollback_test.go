package container

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/internal/sandboxtest"
	"github.com/crib-runtime/crib/sandbox/ocispec"
	"github.com/crib-runtime/crib/sandbox/store"
)

// The rollback tests fail each step of CreateContainer in turn (those of
// Run are sandbox/pod's)
// and check that the undo stack took, newest first, exactly the undo
// steps of what was acquired before the failure, and that nothing is
// left: records, directories, names, the shim's containers, root
// filesystems, cgroups. No step needs root: the seams are fakes, the pod
// side too, the cgroup hierarchy is a plain directory.

// testID is the ID the rollback tests' manager gives every new object, so
// that a test can plant what breaks a step at its path beforehand.
var testID = strings.Repeat("a", 64)

// rollbackEnv is containers over temp dirs with fakes at their seams,
// the pods' side included.
type rollbackEnv struct {
	m       *Manager
	root    string // the root directory
	log     *sandboxtest.UndoLog
	images  *sandboxtest.FakeImages
	pods    *fakePods
	cgroups string // the one cgroup hierarchy, a plain directory
	// pause is a live process standing for pause and init processes.
	pause      int
	pauseStart uint64
	// podConn is the ready pod's shim (readyPod).
	podConn *sandboxtest.FakeConn
	// planted are the paths a test put in a step's way.
	planted sandboxtest.Planted
}

func newRollbackEnv(t *testing.T) *rollbackEnv {
	t.Helper()
	log, undo := sandboxtest.NewUndoLog()
	pid, start := sandboxtest.LiveProcess(t)
	e := &rollbackEnv{
		root:       t.TempDir(),
		log:        undo,
		images:     sandboxtest.NewFakeImages(t.TempDir(), imgspec.ImageConfig{Entrypoint: []string{"/pause"}, Volumes: map[string]struct{}{"/vol": {}}}),
		pods:       &fakePods{pods: map[string]*fakePod{}},
		cgroups:    t.TempDir(),
		pause:      pid,
		pauseStart: start,
	}
	m, err := New(Config{
		RootDir: e.root, RunDir: t.TempDir(), Images: e.images, Log: log,
		IDs:         func() (string, error) { return testID, nil },
		Hierarchies: []string{e.cgroups}, Hub: events.NewHub(log),
	}, e.pods)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	e.m = m
	return e
}

// undone is the undo steps the cleanup stack logged since the last call
// (sandboxtest.UndoLog.Undone), with the env's directories and testID
// written as $ROOT, $RUN and $ID.
func (e *rollbackEnv) undone(t *testing.T) []string {
	t.Helper()
	return e.log.Undone(t, e.m.opts.RootDir, "$ROOT", e.m.opts.RunDir, "$RUN", testID, "$ID")
}

// checkNothingHeld fails t for whatever the fakes still hold.
func (e *rollbackEnv) checkNothingHeld(t *testing.T) {
	t.Helper()
	if len(e.images.RootfsDirs) > 0 {
		t.Errorf("root filesystems left: %v", e.images.RootfsDirs)
	}
	if got := sandboxtest.Entries(t, e.cgroups); len(got) > 0 {
		t.Errorf("cgroups left: %v", got)
	}
}

func TestCreateContainerRollback(t *testing.T) {
	var (
		name    = []string{"release container name"}
		record  = []string{"remove container record"}
		rootfs  = []string{"remove root filesystem"}
		volumes = []string{"remove image volumes"}
		spec    = []string{"remove OCI spec"}
		created = []string{"delete container in shim"}
		adjust  = []string{"undo spec adjustment"}
	)
	ctrPath := func(e *rollbackEnv, suffix string) string {
		return filepath.Join(e.m.containerDir(testPodID), testID+suffix)
	}
	tests := []struct {
		name  string
		cfg   func(*runtimeapi.ContainerConfig)
		setup func(t *testing.T, e *rollbackEnv)
		// after, if set, checks what the case left before the common checks.
		after    func(t *testing.T, e *rollbackEnv)
		wantErr  string
		acquired [][]string
	}{
		{name: "name reserved", setup: func(t *testing.T, e *rollbackEnv) {
			if err := e.m.ctrNames.Reserve(strings.Join([]string{"app", testPodID, "0"}, "_"), "other"); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "is reserved for container other"},
		{name: "container dir", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.File(t, e.m.containerDir(testPodID))
		}, wantErr: "create container dir", acquired: [][]string{name}},
		{name: "record", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.Dir(t, ctrPath(e, ".json"))
		}, wantErr: testID + ".json", acquired: [][]string{name}},
		{name: "rootfs", setup: func(t *testing.T, e *rollbackEnv) { e.images.FailRootfs = true },
			wantErr: sandboxtest.ErrInjected.Error(), acquired: [][]string{name, record}},
		{name: "spec", cfg: func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/nonexistent/crib-unit"}}
		}, wantErr: "/nonexistent/crib-unit", acquired: [][]string{name, record, rootfs}},
		{name: "adjuster refuses", setup: func(t *testing.T, e *rollbackEnv) {
			e.m.opts.Adjuster = adjusterFunc(func(*state.Container, *specs.Spec) error { return sandboxtest.ErrInjected })
		}, wantErr: sandboxtest.ErrInjected.Error(), acquired: [][]string{name, record, rootfs}},
		{name: "after adjustment", setup: func(t *testing.T, e *rollbackEnv) {
			e.m.opts.Adjuster = adjusterFunc(func(*state.Container, *specs.Spec) error { return nil })
			e.planted.Dir(t, ctrPath(e, ".spec"))
		}, wantErr: "save OCI spec", acquired: [][]string{name, record, rootfs, adjust, volumes}},
		{name: "image volume", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.File(t, ctrPath(e, ".volumes"))
		}, wantErr: "image volume /vol", acquired: [][]string{name, record, rootfs, volumes}},
		{name: "spec file", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.Dir(t, ctrPath(e, ".spec"))
		}, wantErr: "save OCI spec", acquired: [][]string{name, record, rootfs, volumes}},
		{name: "shim gone", setup: func(t *testing.T, e *rollbackEnv) {
			// Not connected since a restart, and not answering.
			e.pods.pods[testPodID].conn = nil
		},
			wantErr: "shim of pod", acquired: [][]string{name, record, rootfs, volumes, spec}},
		{name: "shim create", setup: func(t *testing.T, e *rollbackEnv) { e.podConn.FailCreate = true },
			wantErr: "create container app", acquired: [][]string{name, record, rootfs, volumes, spec, created}},
		{name: "shim dies in create", setup: func(t *testing.T, e *rollbackEnv) {
			// The shim made the container's cgroup, then was killed.
			e.podConn.Dies = true
			e.podConn.OnCreate = func(id string) { sandboxtest.Mkdir(t, filepath.Join(e.cgroups, "crib-test", id)) }
		}, after: func(t *testing.T, e *rollbackEnv) {
			if got := sandboxtest.Entries(t, filepath.Join(e.cgroups, "crib-test")); len(got) > 0 {
				t.Errorf("container cgroups left: %v", got)
			}
			// The pod's cgroup parent is the pod's, not the container's.
			_ = os.Remove(filepath.Join(e.cgroups, "crib-test"))
		}, wantErr: sandboxtest.ErrShimDied.Error(), acquired: [][]string{name, record, rootfs, volumes, spec, created}},
		{name: "container gone", setup: func(t *testing.T, e *rollbackEnv) { e.podConn.Pid = 1 << 30 },
			wantErr: "init process", acquired: [][]string{name, record, rootfs, volumes, spec, created}},
		{name: "final record", setup: func(t *testing.T, e *rollbackEnv) {
			e.podConn.OnCreate = func(id string) { sandboxtest.ReplaceWithDir(ctrPath(e, ".json")) }
		}, wantErr: testID + ".json", acquired: [][]string{name, record, rootfs, volumes, spec, created}},
	}
	taken := sandboxtest.Taken{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newRollbackEnv(t)
			readyPod(t, e)
			cfg := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
				Image:    &runtimeapi.ImageSpec{Image: "app:1"},
				Command:  []string{"true"},
			}
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			if tc.setup != nil {
				tc.setup(t, e)
			}
			req := ContainerRequest{Name: "app", Image: "app:1", LogPath: "app/0.log", Spec: ocispec.FromCRI(cfg)}
			id, err := e.m.CreateContainer(context.Background(), testPodID, req)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CreateContainer = %q, %v; want an error containing %q", id, err, tc.wantErr)
			}
			taken.Check(t, e.undone(t), tc.acquired...)
			e.planted.Remove(t)
			if tc.after != nil {
				tc.after(t, e)
			}
			e.checkNothingHeld(t)
			if n := len(e.podConn.Containers); n > 0 {
				t.Errorf("containers left in the shim: %v", e.podConn.Containers)
			}
			if len(e.m.containers.List()) > 0 {
				t.Errorf("containers left in the index")
			}
			if holder, ok := e.m.ctrNames.Get("app_" + testPodID + "_0"); ok && holder != "other" {
				t.Errorf("container name left reserved for %s", holder)
			}
			if got := sandboxtest.Entries(t, e.m.containerDir(testPodID)); len(got) > 0 {
				t.Errorf("left in the pod's container dir: %v", got)
			}
		})
	}
	taken.CheckAll(t, name, record, rootfs, adjust, volumes, spec, created)
}

// TestCreateContainerFakes: with nothing broken, CreateContainer succeeds
// against the same fakes, so the rollback cases fail where they say.
func TestCreateContainerFakes(t *testing.T) {
	e := newRollbackEnv(t)
	readyPod(t, e)
	cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "app:1"}}
	id, err := e.m.CreateContainer(context.Background(), testPodID, ContainerRequest{Name: "app", Image: "app:1", Spec: ocispec.FromCRI(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.m.Container(id)
	if err != nil || v.Name != "app" || v.Pid != e.pause || !e.podConn.Containers[id] {
		t.Fatalf("container %s: %+v, %v", id, v, err)
	}
	if got := e.undone(t); len(got) > 0 {
		t.Errorf("undo steps taken on success: %v", got)
	}
}

// adjusterFunc is a SpecAdjuster.
type adjusterFunc func(rec *state.Container, spec *specs.Spec) error

func (f adjusterFunc) AdjustSpec(_ context.Context, _ *state.Sandbox, rec *state.Container, spec *specs.Spec) error {
	return f(rec, spec)
}

func (f adjusterFunc) UndoAdjust(context.Context, *state.Sandbox, *state.Container, *specs.Spec) {}

// TestCreateContainerAdjuster: what an adjuster (NRI) changes is in the
// spec the shim gets and in what the record derives from it.
func TestCreateContainerAdjuster(t *testing.T) {
	e := newRollbackEnv(t)
	readyPod(t, e)
	limit := int64(32 << 20)
	e.m.opts.Adjuster = adjusterFunc(func(rec *state.Container, spec *specs.Spec) error {
		if rec.ID != testID || rec.Name != "app" {
			t.Errorf("adjuster got record %+v", rec)
		}
		spec.Process.Env = append(spec.Process.Env, "ADJUSTED=1")
		spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		return nil
	})
	cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "app:1"}}
	id, err := e.m.CreateContainer(context.Background(), testPodID, ContainerRequest{Name: "app", Image: "app:1", Spec: ocispec.FromCRI(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	var saved specs.Spec
	data, err := e.m.ContainerSpec(id)
	if err == nil {
		err = json.Unmarshal(data, &saved)
	}
	if err != nil || !slices.Contains(saved.Process.Env, "ADJUSTED=1") {
		t.Errorf("saved spec env %q (%v), want the adjuster's variable", saved.Process.Env, err)
	}
	if v, err := e.m.Container(id); err != nil || v.Resources == nil || v.Resources.MemoryLimit != limit {
		t.Errorf("record resources %+v (%v), want the adjusted memory limit", v.Resources, err)
	}
}

// testPodID is the ready pod's ID in the CreateContainer tests.
var testPodID = strings.Repeat("b", 64)

// readyPod gives e's fake pods a ready pod, as Run leaves one, whose
// shim is e.podConn and whose pause process is e's.
func readyPod(t *testing.T, e *rollbackEnv) {
	t.Helper()
	rec := sandboxtest.PodSpec()
	rec.ID = testPodID
	rec.Phase = state.PhaseReady
	rec.CgroupDriver = string(cgroup.Cgroupfs)
	rec.CgroupParent = "/crib-test"
	rec.ShimDir = store.PodDir(e.m.opts.RunDir, testPodID)
	rec.LogDirectory = t.TempDir()
	rec.PausePID, rec.PauseStartTime = e.pause, e.pauseStart
	sandboxtest.Mkdir(t, store.PodDir(e.root, testPodID))
	sandboxtest.Mkdir(t, rec.ShimDir)
	e.podConn = &sandboxtest.FakeConn{Pid: e.pause, Containers: map[string]bool{}}
	e.pods.pods[testPodID] = &fakePod{rec: rec, conn: e.podConn, filesDir: store.PodDir(e.root, testPodID)}
}
