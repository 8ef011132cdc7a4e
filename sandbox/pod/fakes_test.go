package pod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/internal/nsfs"
	"github.com/crib-runtime/crib/network"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// The fakes below stand at the pods' seams (Config.Pinner, Shims,
// Network, Images, and the containers' side) for the rollback and shim
// death tests: each keeps what is held through it, so that a test can
// tell that a failed Run left nothing, and fails a step when told to.

// errInjected is the failure a fake returns when told to fail.
var errInjected = errors.New("injected failure")

// errShimDied is what a call to a shim killed under it returns.
var errShimDied = errors.New("unexpected EOF from a killed shim")

// fakePinner pins and mounts in a map.
type fakePinner struct {
	mu                         sync.Mutex
	failPin, failUser, failShm bool
	held                       map[string]string // path -> "pin" or "shm"
}

func newFakePinner() *fakePinner { return &fakePinner{held: map[string]string{}} }

func (f *fakePinner) Pin(pins map[nsfs.Type]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPin {
		return errInjected
	}
	for _, p := range pins {
		f.held[p] = "pin"
	}
	return nil
}

// PinInUserNS pins user.Path too, and returns no holder: pause then joins
// the user namespace by its pin.
func (f *fakePinner) PinInUserNS(pins map[nsfs.Type]string, user nsfs.UserNS) (*nsfs.Holder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failUser {
		return nil, errInjected
	}
	for _, p := range pins {
		f.held[p] = "pin"
	}
	f.held[user.Path] = "pin"
	return nil, nil
}

func (f *fakePinner) Unpin(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, path)
	return nil
}

func (f *fakePinner) MountShm(path, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failShm {
		return errInjected
	}
	f.held[path] = "shm"
	return nil
}

func (f *fakePinner) Unmount(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, path)
	return nil
}

// fakeConn is a shim connection whose containers are names in a map.
// Methods the tests do not reach are the nil embedded shimclient.Conn's: calling
// one panics.
type fakeConn struct {
	shimclient.Conn
	mu                    sync.Mutex
	failCreate, failStart bool
	// dies makes Create run onCreate and then fail as a shim killed in
	// the middle of it does, and every later Delete fail too.
	dies bool
	// pid is what Create returns.
	pid int
	// onCreate, if set, runs in Create: a test's way to break a later step.
	onCreate   func(id string)
	containers map[string]bool
	shutdown   bool
	closed     bool
}

func (c *fakeConn) Create(_ context.Context, req *shimapi.CreateRequest) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failCreate {
		return 0, errInjected
	}
	if c.onCreate != nil {
		c.onCreate(req.ID)
	}
	if c.dies {
		return 0, errShimDied
	}
	c.containers[req.ID] = true
	return c.pid, nil
}

func (c *fakeConn) Start(context.Context, string) error {
	if c.failStart {
		return errInjected
	}
	return nil
}

func (c *fakeConn) Delete(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dies {
		return errShimDied
	}
	delete(c.containers, id)
	return nil
}

// Shutdown ends the shim, and with it its containers.
func (c *fakeConn) Shutdown(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shutdown = true
	c.containers = map[string]bool{}
	return nil
}

func (c *fakeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// fakeShims launches fakeConns.
type fakeShims struct {
	mu         sync.Mutex
	failLaunch bool
	// conn configures every connection launched; connect is what Connect
	// returns (none: the shim is gone).
	conn     fakeConn
	connect  *fakeConn
	launched []*fakeConn
}

func (f *fakeShims) Launch(context.Context, string) (shimclient.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failLaunch {
		return nil, errInjected
	}
	c := &fakeConn{
		failCreate: f.conn.failCreate, failStart: f.conn.failStart, pid: f.conn.pid,
		onCreate: f.conn.onCreate, containers: map[string]bool{},
	}
	f.launched = append(f.launched, c)
	return c, nil
}

func (f *fakeShims) Connect(string) (shimclient.Conn, error) {
	if f.connect == nil {
		return nil, errInjected
	}
	return f.connect, nil
}

// fakeNetwork attaches pods in a map.
type fakeNetwork struct {
	mu        sync.Mutex
	failSetup bool
	attached  map[string]bool
}

func (f *fakeNetwork) Setup(_ context.Context, req network.SetupRequest) (*network.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSetup {
		return nil, errInjected
	}
	f.attached[req.SandboxID] = true
	return &network.Result{}, nil
}

func (f *fakeNetwork) Teardown(_ context.Context, req network.SetupRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, req.SandboxID)
	return nil
}

// fakeImages has one image, whose root filesystems are directories under
// dir.
type fakeImages struct {
	mu                     sync.Mutex
	dir                    string
	img                    image.Image
	failStatus, failRootfs bool
	rootfses               map[string]string // container ID -> directory
}

func newFakeImages(dir string, cfg imgspec.ImageConfig) *fakeImages {
	return &fakeImages{
		dir:      dir,
		img:      image.Image{ID: mustImageID(strings.Repeat("f", 64)), Config: &imgspec.Image{Config: cfg}},
		rootfses: map[string]string{},
	}
}

func mustImageID(s string) image.ID {
	id, err := image.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

func (f *fakeImages) Status(string) (*image.Image, error) {
	if f.failStatus {
		return nil, errInjected
	}
	img := f.img
	return &img, nil
}

func (f *fakeImages) Pull(context.Context, string, image.Auth) (image.ID, error) {
	return image.ID{}, errdefs.Unavailable("no registry in unit tests")
}

func (f *fakeImages) CreateRootfs(id string, _ image.ID, _ string, _ image.IDMappings) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRootfs {
		return "", errInjected
	}
	dir := filepath.Join(f.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f.rootfses[id] = dir
	return dir, nil
}

func (f *fakeImages) RemoveRootfs(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dir, ok := f.rootfses[id]; ok {
		delete(f.rootfses, id)
		return os.RemoveAll(dir)
	}
	return nil
}

func (f *fakeImages) Rootfses() ([]image.Rootfs, error) { return nil, nil }

// fakeContainers is the containers' side of pods that have none: it
// records the calls the pods make.
type fakeContainers struct {
	mu sync.Mutex
	// shimDied are the pods whose ShimDied was called, in order;
	// stopped is what the next ShimDied returns (then nothing).
	shimDied []string
	stopped  []string
}

func (*fakeContainers) Recover(string) {}

func (*fakeContainers) StopAll(context.Context, *Locked) error { return nil }

func (*fakeContainers) RemoveAll(context.Context, *Locked) error { return nil }

func (f *fakeContainers) ShimDied(_ context.Context, p *Locked, _ string, _ time.Time) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shimDied = append(f.shimDied, p.Record().ID)
	out := f.stopped
	f.stopped = nil
	return out
}

// diedFor reports whether ShimDied was called for pod id.
func (f *fakeContainers) diedFor(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.shimDied, id)
}
