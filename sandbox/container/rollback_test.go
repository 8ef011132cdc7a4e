package container

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/sandbox/events"
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
	log     *logtest.Hook
	images  *fakeImages
	pods    *fakePods
	cgroups string // the one cgroup hierarchy, a plain directory
	// pause is a live process standing for pause and init processes.
	pause      int
	pauseStart uint64
	// podConn is the ready pod's shim (readyPod).
	podConn *fakeConn
	// planted are the paths a test put in a step's way: not the manager's
	// to remove, and removed before the check for leftovers.
	planted []string
}

// plantFile and plantDir put a file or a directory at path, where a step
// will fail on it.
func (e *rollbackEnv) plantFile(t *testing.T, path string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.planted = append(e.planted, path)
}

func (e *rollbackEnv) plantDir(t *testing.T, path string) {
	t.Helper()
	mkdir(t, path)
	e.planted = append(e.planted, path)
}

// unplant removes what the test planted.
func (e *rollbackEnv) unplant(t *testing.T) {
	t.Helper()
	for _, p := range e.planted {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
}

func newRollbackEnv(t *testing.T) *rollbackEnv {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	hook := logtest.NewLocal(log)

	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	start, err := procfs.StartTime(sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	e := &rollbackEnv{
		root:       t.TempDir(),
		log:        hook,
		images:     newFakeImages(t.TempDir(), imgspec.ImageConfig{Entrypoint: []string{"/pause"}, Volumes: map[string]struct{}{"/vol": {}}}),
		pods:       &fakePods{pods: map[string]*fakePod{}},
		cgroups:    t.TempDir(),
		pause:      sleeper.Process.Pid,
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

// undone is the undo steps the cleanup stack logged since the last call,
// in the order taken, with the env's directories and testID written as
// $ROOT, $RUN, $NETNS and $ID, and each run of unpin steps sorted (pins
// are kept in a map). Failed undo steps fail the test.
func (e *rollbackEnv) undone(t *testing.T) []string {
	t.Helper()
	r := strings.NewReplacer(e.m.opts.RootDir, "$ROOT", e.m.opts.RunDir, "$RUN", testID, "$ID")
	var out []string
	for _, entry := range e.log.AllEntries() {
		what, ok := strings.CutPrefix(entry.Message, "cleanup: ")
		if !ok {
			continue
		}
		if entry.Level != logrus.DebugLevel {
			t.Errorf("undo step %s (%v)", entry.Message, entry.Data[logrus.ErrorKey])
			continue
		}
		out = append(out, r.Replace(what))
	}
	e.log.Reset()
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], "unpin ") {
			j++
		}
		sort.Strings(out[i:j])
		if j == i {
			j++
		}
		i = j
	}
	return out
}

// reversed returns the undo steps of what was acquired, in the order the
// stack takes them.
func reversed(acquired ...[]string) []string {
	var all []string
	for _, a := range acquired {
		all = append(all, a...)
	}
	out := make([]string, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, all[i])
	}
	// Pins are undone in a run, sorted by undone.
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], "unpin ") {
			j++
		}
		sort.Strings(out[i:j])
		if j == i {
			j++
		}
		i = j
	}
	return out
}

// entries lists dir's entries by name.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	list, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name())
	}
	return names
}

// checkNothingHeld fails t for whatever the fakes still hold.
func (e *rollbackEnv) checkNothingHeld(t *testing.T) {
	t.Helper()
	if len(e.images.rootfses) > 0 {
		t.Errorf("root filesystems left: %v", e.images.rootfses)
	}
	if got := entries(t, e.cgroups); len(got) > 0 {
		t.Errorf("cgroups left: %v", got)
	}
}

// podSpec is what RunPodSandbox would pass for a pod with its own
// network, IPC and UTS namespaces.
func podSpec() state.Sandbox {
	return state.Sandbox{
		Metadata:    state.PodMetadata{Name: "web", Namespace: "default", UID: "u1"},
		Hostname:    "web",
		NetworkMode: state.NamespacePod, PIDMode: state.NamespacePod, IPCMode: state.NamespacePod,
	}
}

// replaceWithDir puts an empty directory where the file path is, so that
// the next atomic write of it fails.
func replaceWithDir(path string) {
	_ = os.Remove(path)
	_ = os.Mkdir(path, 0o700)
}

func TestCreateContainerRollback(t *testing.T) {
	var (
		name    = []string{"release container name"}
		record  = []string{"remove container record"}
		rootfs  = []string{"remove root filesystem"}
		volumes = []string{"remove image volumes"}
		spec    = []string{"remove OCI spec"}
		created = []string{"delete container in shim"}
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
			e.plantFile(t, e.m.containerDir(testPodID))
		}, wantErr: "create container dir", acquired: [][]string{name}},
		{name: "record", setup: func(t *testing.T, e *rollbackEnv) {
			e.plantDir(t, ctrPath(e, ".json"))
		}, wantErr: testID + ".json", acquired: [][]string{name}},
		{name: "rootfs", setup: func(t *testing.T, e *rollbackEnv) { e.images.failRootfs = true },
			wantErr: errInjected.Error(), acquired: [][]string{name, record}},
		{name: "spec", cfg: func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/nonexistent/crib-unit"}}
		}, wantErr: "/nonexistent/crib-unit", acquired: [][]string{name, record, rootfs}},
		{name: "image volume", setup: func(t *testing.T, e *rollbackEnv) {
			e.plantFile(t, ctrPath(e, ".volumes"))
		}, wantErr: "image volume /vol", acquired: [][]string{name, record, rootfs, volumes}},
		{name: "spec file", setup: func(t *testing.T, e *rollbackEnv) {
			e.plantDir(t, ctrPath(e, ".spec"))
		}, wantErr: "save OCI spec", acquired: [][]string{name, record, rootfs, volumes}},
		{name: "shim gone", setup: func(t *testing.T, e *rollbackEnv) {
			// Not connected since a restart, and not answering.
			e.pods.pods[testPodID].conn = nil
		},
			wantErr: "shim of pod", acquired: [][]string{name, record, rootfs, volumes, spec}},
		{name: "shim create", setup: func(t *testing.T, e *rollbackEnv) { e.podConn.failCreate = true },
			wantErr: "create container app", acquired: [][]string{name, record, rootfs, volumes, spec, created}},
		{name: "shim dies in create", setup: func(t *testing.T, e *rollbackEnv) {
			// The shim made the container's cgroup, then was killed.
			e.podConn.dies = true
			e.podConn.onCreate = func(id string) { mkdir(t, filepath.Join(e.cgroups, "crib-test", id)) }
		}, after: func(t *testing.T, e *rollbackEnv) {
			if got := entries(t, filepath.Join(e.cgroups, "crib-test")); len(got) > 0 {
				t.Errorf("container cgroups left: %v", got)
			}
			// The pod's cgroup parent is the pod's, not the container's.
			_ = os.Remove(filepath.Join(e.cgroups, "crib-test"))
		}, wantErr: errShimDied.Error(), acquired: [][]string{name, record, rootfs, volumes, spec, created}},
		{name: "container gone", setup: func(t *testing.T, e *rollbackEnv) { e.podConn.pid = 1 << 30 },
			wantErr: "init process", acquired: [][]string{name, record, rootfs, volumes, spec, created}},
		{name: "final record", setup: func(t *testing.T, e *rollbackEnv) {
			e.podConn.onCreate = func(id string) { replaceWithDir(ctrPath(e, ".json")) }
		}, wantErr: testID + ".json", acquired: [][]string{name, record, rootfs, volumes, spec, created}},
	}
	taken := map[string]bool{}
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
			got, want := e.undone(t), reversed(tc.acquired...)
			if !slices.Equal(got, want) {
				t.Errorf("undo steps taken:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, s := range got {
				taken[s] = true
			}
			e.unplant(t)
			if tc.after != nil {
				tc.after(t, e)
			}
			e.checkNothingHeld(t)
			if n := len(e.podConn.containers); n > 0 {
				t.Errorf("containers left in the shim: %v", e.podConn.containers)
			}
			if len(e.m.containers.List()) > 0 {
				t.Errorf("containers left in the index")
			}
			if holder, ok := e.m.ctrNames.Get("app_" + testPodID + "_0"); ok && holder != "other" {
				t.Errorf("container name left reserved for %s", holder)
			}
			if got := entries(t, e.m.containerDir(testPodID)); len(got) > 0 {
				t.Errorf("left in the pod's container dir: %v", got)
			}
		})
	}
	for _, steps := range [][]string{name, record, rootfs, volumes, spec, created} {
		for _, s := range steps {
			if !taken[s] {
				t.Errorf("no case took the undo step %q", s)
			}
		}
	}
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
	if err != nil || v.Name != "app" || v.Pid != e.pause || !e.podConn.containers[id] {
		t.Fatalf("container %s: %+v, %v", id, v, err)
	}
	if got := e.undone(t); len(got) > 0 {
		t.Errorf("undo steps taken on success: %v", got)
	}
}

// testPodID is the ready pod's ID in the CreateContainer tests.
var testPodID = strings.Repeat("b", 64)

// readyPod gives e's fake pods a ready pod, as Run leaves one, whose
// shim is e.podConn and whose pause process is e's.
func readyPod(t *testing.T, e *rollbackEnv) {
	t.Helper()
	rec := podSpec()
	rec.ID = testPodID
	rec.Phase = state.PhaseReady
	rec.CgroupDriver = string(cgroup.Cgroupfs)
	rec.CgroupParent = "/crib-test"
	rec.ShimDir = store.PodDir(e.m.opts.RunDir, testPodID)
	rec.LogDirectory = t.TempDir()
	rec.PausePID, rec.PauseStartTime = e.pause, e.pauseStart
	mkdir(t, store.PodDir(e.root, testPodID))
	mkdir(t, rec.ShimDir)
	e.podConn = &fakeConn{pid: e.pause, containers: map[string]bool{}}
	e.pods.pods[testPodID] = &fakePod{rec: rec, conn: e.podConn, filesDir: store.PodDir(e.root, testPodID)}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}
