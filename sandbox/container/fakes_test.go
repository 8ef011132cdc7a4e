package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// The fakes below stand at the containers' seams (Config.Images, the
// pods' side and the pod's shim) for the rollback tests: each keeps what
// is held through it, so that a test can tell that a failed
// CreateContainer left nothing, and fails a step when told to.

// errInjected is the failure a fake returns when told to fail.
var errInjected = errors.New("injected failure")

// errShimDied is what a call to a shim killed under it returns.
var errShimDied = errors.New("unexpected EOF from a killed shim")

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

// fakePods is the pods' side: pods by full ID.
type fakePods struct {
	pods map[string]*fakePod
}

func (f *fakePods) Lock(id string) (Pod, error) {
	p, ok := f.pods[id]
	if !ok {
		return nil, errdefs.NotFound("pod sandbox %q not found", id)
	}
	p.mu.Lock()
	return p, nil
}

// fakePod is a pod whose shim is conn (none: not connected since a
// restart, and not answering).
type fakePod struct {
	mu       sync.Mutex
	rec      state.Sandbox
	conn     *fakeConn
	filesDir string
}

func (p *fakePod) Record() state.Sandbox { return p.rec }

func (p *fakePod) Shim() (shimclient.Conn, error) {
	if p.rec.ShimDied != nil {
		return nil, errdefs.FailedPrecondition("pod sandbox %s is not ready: its shim died", p.rec.ID)
	}
	if p.conn == nil {
		return nil, fmt.Errorf("shim of pod %s: %w", p.rec.ID, errInjected)
	}
	return p.conn, nil
}

func (p *fakePod) FilesDir() string { return p.filesDir }

func (p *fakePod) Unlock() { p.mu.Unlock() }
