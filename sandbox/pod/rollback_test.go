package pod

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/internal/sandboxtest"
	"github.com/crib-runtime/crib/sandbox/store"
)

// The rollback tests fail each step of Run in turn (sandbox/container's,
// those of CreateContainer)
// and check that the undo stack took, newest first, exactly the undo
// steps of what was acquired before the failure, and that nothing is
// left: records, directories, names, pins, mounts, network attachments,
// shims, root filesystems. No step needs root: the seams are fakes, the
// cgroup hierarchy is a plain directory.

// testID is the ID the rollback tests' manager gives every new object, so
// that a test can plant what breaks a step at its path beforehand.
var testID = strings.Repeat("a", 64)

// rollbackEnv is Pods over temp dirs with fakes at its seams, its
// containers' side included.
type rollbackEnv struct {
	m       *Pods
	log     *sandboxtest.UndoLog
	pinner  *fakePinner
	shims   *sandboxtest.FakeShims
	net     *fakeNetwork
	images  *sandboxtest.FakeImages
	cgroups string // the one cgroup hierarchy, a plain directory
	// pause is a live process standing for pause processes.
	pause      int
	pauseStart uint64
	// planted are the paths a test put in a step's way.
	planted sandboxtest.Planted
}

func newRollbackEnv(t *testing.T, hierarchies ...string) *rollbackEnv {
	t.Helper()
	log, undo := sandboxtest.NewUndoLog()
	pid, start := sandboxtest.LiveProcess(t)
	e := &rollbackEnv{
		log:        undo,
		pinner:     newFakePinner(),
		shims:      &sandboxtest.FakeShims{Conn: sandboxtest.FakeConn{Pid: pid}},
		net:        &fakeNetwork{attached: map[string]bool{}},
		images:     sandboxtest.NewFakeImages(t.TempDir(), imgspec.ImageConfig{Entrypoint: []string{"/pause"}, Volumes: map[string]struct{}{"/vol": {}}}),
		cgroups:    t.TempDir(),
		pause:      pid,
		pauseStart: start,
	}
	opts := Config{
		RootDir: t.TempDir(), RunDir: t.TempDir(), NetNSDir: t.TempDir(),
		CgroupDriver: cgroup.Cgroupfs, CgroupParent: "/crib-test",
		PauseBinary: "/bin/true", ShmSize: 64 << 20,
		Network: e.net, Images: e.images, Pinner: e.pinner, Shims: e.shims, Log: log,
	}
	for _, d := range []string{podsDir(opts.RootDir), podsDir(opts.RunDir)} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	hs := append([]string{e.cgroups}, hierarchies...)
	parents, err := cgroup.NewParents(cgroup.ParentsOptions{File: filepath.Join(opts.RunDir, "cgroups.json"), Hierarchies: hs})
	if err != nil {
		t.Fatal(err)
	}
	e.m = &Pods{
		opts:        opts,
		ctrs:        &fakeContainers{},
		ids:         func() (string, error) { return testID, nil },
		pauseRootfs: t.TempDir(),
		hierarchies: hs,
		parents:     parents,
		hub:         events.NewHub(log),
		pods:        newPodIndex(),
		names:       store.NewRegistrar(),
	}
	return e
}

// undone is the undo steps the cleanup stack logged since the last call
// (sandboxtest.UndoLog.Undone), with the env's directories and testID
// written as $ROOT, $RUN, $NETNS and $ID.
func (e *rollbackEnv) undone(t *testing.T) []string {
	t.Helper()
	o := e.m.opts
	return e.log.Undone(t, o.RootDir, "$ROOT", o.RunDir, "$RUN", o.NetNSDir, "$NETNS", testID, "$ID")
}

// checkNothingHeld fails t for whatever the fakes still hold.
func (e *rollbackEnv) checkNothingHeld(t *testing.T) {
	t.Helper()
	if len(e.pinner.held) > 0 {
		t.Errorf("pins and mounts left: %v", e.pinner.held)
	}
	if len(e.net.attached) > 0 {
		t.Errorf("network attachments left: %v", e.net.attached)
	}
	if len(e.images.RootfsDirs) > 0 {
		t.Errorf("root filesystems left: %v", e.images.RootfsDirs)
	}
	for i, c := range e.shims.Launched {
		if !c.ShutdownCalled || !c.CloseCalled || len(c.Containers) > 0 {
			t.Errorf("shim %d left: shut down %v, closed %v, containers %v", i, c.ShutdownCalled, c.CloseCalled, c.Containers)
		}
	}
	if got := sandboxtest.Entries(t, e.cgroups); len(got) > 0 {
		t.Errorf("cgroups left: %v", got)
	}
}

func TestRunRollback(t *testing.T) {
	// What Run acquires, in order, as the undo steps that release it.
	var (
		name    = []string{"release pod name"}
		podDir  = []string{"remove $ROOT/pods/$ID"}
		runDir  = []string{"remove $RUN/pods/$ID"}
		parent  = []string{"release cgroup parent /crib-test"}
		shm     = []string{"unmount $RUN/pods/$ID/shm"}
		pins    = []string{"unpin $NETNS/crib-$ID", "unpin $RUN/pods/$ID/ns/uts", "unpin $RUN/pods/$ID/ns/ipc"}
		userPin = []string{"unpin $RUN/pods/$ID/ns/user"}
		pauseFS = []string{"remove pause image rootfs"}
		shim    = []string{"shut down shim"}
		netUp   = []string{"tear down pod network"}
	)
	userns := []state.IDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	tests := []struct {
		name string
		// hierarchies are cgroup hierarchies besides the env's.
		hierarchies func(t *testing.T) []string
		spec        func(*state.Sandbox)
		// setup breaks the step.
		setup func(t *testing.T, e *rollbackEnv)
		// wantErr is in the error Run returns.
		wantErr string
		// acquired is what was acquired before the failure.
		acquired [][]string
	}{
		{name: "name reserved", setup: func(t *testing.T, e *rollbackEnv) {
			if err := e.m.names.Reserve(nameKey(sandboxtest.PodSpec().Metadata), "other"); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "is reserved for pod other"},
		{name: "pod dir", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.File(t, filepath.Join(podsDir(e.m.opts.RootDir), testID))
		}, wantErr: "create pod dir", acquired: [][]string{name}},
		{name: "record", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.Dir(t, e.m.recordPath(testID))
		}, wantErr: "sandbox.json", acquired: [][]string{name, podDir}},
		{name: "run dir", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.File(t, filepath.Join(podsDir(e.m.opts.RunDir), testID))
		}, wantErr: "create pod run dir", acquired: [][]string{name, podDir}},
		{name: "cgroup parent", hierarchies: func(t *testing.T) []string {
			// A hierarchy that is gone (unmounted): the parent cannot be
			// made in it, after it was made in the env's.
			return []string{filepath.Join(t.TempDir(), "gone")}
		}, wantErr: "cgroup parent /crib-test", acquired: [][]string{name, podDir, runDir, parent}},
		{name: "pod files", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.Dir(t, filepath.Join(podsDir(e.m.opts.RootDir), testID, state.HostnameFile))
		}, wantErr: "write pod file", acquired: [][]string{name, podDir, runDir, parent}},
		{name: "shm", setup: func(t *testing.T, e *rollbackEnv) { e.pinner.failShm = true },
			wantErr: sandboxtest.ErrInjected.Error(), acquired: [][]string{name, podDir, runDir, parent}},
		{name: "pins", setup: func(t *testing.T, e *rollbackEnv) { e.pinner.failPin = true },
			wantErr: "pin pod namespaces", acquired: [][]string{name, podDir, runDir, parent, shm}},
		{name: "network", setup: func(t *testing.T, e *rollbackEnv) { e.net.failSetup = true },
			wantErr: sandboxtest.ErrInjected.Error(), acquired: [][]string{name, podDir, runDir, parent, shm, pins, shim}},
		{name: "shim launch", setup: func(t *testing.T, e *rollbackEnv) { e.shims.FailLaunch = true },
			wantErr: "start shim for pod", acquired: [][]string{name, podDir, runDir, parent, shm, pins, netUp}},
		{name: "pause create", setup: func(t *testing.T, e *rollbackEnv) { e.shims.Conn.FailCreate = true },
			wantErr: "start pause process", acquired: [][]string{name, podDir, runDir, parent, shm, pins, shim, netUp}},
		{name: "pause start", setup: func(t *testing.T, e *rollbackEnv) { e.shims.Conn.FailStart = true },
			wantErr: "start pause process", acquired: [][]string{name, podDir, runDir, parent, shm, pins, shim, netUp}},
		{name: "pause gone", setup: func(t *testing.T, e *rollbackEnv) { e.shims.Conn.Pid = 1 << 30 },
			wantErr: "pause process", acquired: [][]string{name, podDir, runDir, parent, shm, pins, shim, netUp}},
		{name: "hosts file", setup: func(t *testing.T, e *rollbackEnv) {
			e.planted.Dir(t, filepath.Join(podsDir(e.m.opts.RootDir), testID, state.HostsFile))
		}, wantErr: state.HostsFile, acquired: [][]string{name, podDir, runDir, parent, shm, pins, shim, netUp}},
		{name: "ready record", setup: func(t *testing.T, e *rollbackEnv) {
			e.shims.Conn.OnCreate = func(string) { sandboxtest.ReplaceWithDir(e.m.recordPath(testID)) }
		}, wantErr: "sandbox.json", acquired: [][]string{name, podDir, runDir, parent, shm, pins, shim, netUp}},
		{name: "user namespace: pins", spec: func(s *state.Sandbox) { s.UIDMappings, s.GIDMappings = userns, userns },
			setup:   func(t *testing.T, e *rollbackEnv) { e.pinner.failUser = true },
			wantErr: "pin pod namespaces", acquired: [][]string{name, podDir, runDir, parent, shm}},
		{name: "user namespace: pause", spec: func(s *state.Sandbox) { s.UIDMappings, s.GIDMappings = userns, userns },
			setup:   func(t *testing.T, e *rollbackEnv) { e.shims.Conn.FailCreate = true },
			wantErr: "start pause process", acquired: [][]string{name, podDir, runDir, parent, shm, pins, userPin, shim, netUp}},
		{name: "pause image", setup: func(t *testing.T, e *rollbackEnv) {
			e.m.opts.PauseImage = "pause:test"
			e.images.FailStatus = true
		}, wantErr: "runtime.pause_image", acquired: [][]string{name, podDir, runDir, parent, shm, pins, netUp}},
		{name: "pause image rootfs", setup: func(t *testing.T, e *rollbackEnv) {
			e.m.opts.PauseImage = "pause:test"
			e.images.FailRootfs = true
		}, wantErr: "pause image", acquired: [][]string{name, podDir, runDir, parent, shm, pins, netUp}},
		{name: "pause image: pause create", setup: func(t *testing.T, e *rollbackEnv) {
			e.m.opts.PauseImage = "pause:test"
			e.shims.Conn.FailCreate = true
		}, wantErr: "start pause process", acquired: [][]string{name, podDir, runDir, parent, shm, pins, pauseFS, shim, netUp}},
	}
	taken := sandboxtest.Taken{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hs []string
			if tc.hierarchies != nil {
				hs = tc.hierarchies(t)
			}
			e := newRollbackEnv(t, hs...)
			spec := sandboxtest.PodSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			if tc.setup != nil {
				tc.setup(t, e)
			}
			id, err := e.m.Run(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run = %q, %v; want an error containing %q", id, err, tc.wantErr)
			}
			taken.Check(t, e.undone(t), tc.acquired...)
			e.planted.Remove(t)
			e.checkNothingHeld(t)
			if len(e.m.pods.List()) > 0 {
				t.Errorf("pods left in the index")
			}
			if holder, ok := e.m.names.Get(nameKey(spec.Metadata)); ok && holder != "other" {
				t.Errorf("pod name left reserved for %s", holder)
			}
			for _, dir := range []string{podsDir(e.m.opts.RootDir), podsDir(e.m.opts.RunDir), e.m.opts.NetNSDir} {
				if got := sandboxtest.Entries(t, dir); len(got) > 0 {
					t.Errorf("left in %s: %v", dir, got)
				}
			}
		})
	}
	// Every undo step Run has was taken by some case.
	taken.CheckAll(t, name, podDir, runDir, parent, shm, pins, userPin, pauseFS, shim, netUp)
}
