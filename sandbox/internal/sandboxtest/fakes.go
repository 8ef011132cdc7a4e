package sandboxtest

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// The fakes below stand at the seams pods and containers share (the
// shims and the images) for their rollback and shim death tests: each
// keeps what is held through it, so that a test can tell that a failed
// Run or CreateContainer left nothing, and fails a step when told to.

// ErrInjected is the failure a fake returns when told to fail.
var ErrInjected = errors.New("injected failure")

// ErrShimDied is what a call to a shim killed under it returns.
var ErrShimDied = errors.New("unexpected EOF from a killed shim")

// FakeConn is a shim connection whose containers are names in a map.
// Methods the tests do not reach are the nil embedded shimclient.Conn's:
// calling one panics.
type FakeConn struct {
	shimclient.Conn
	mu sync.Mutex
	// FailCreate and FailStart make Create and Start fail with
	// ErrInjected.
	FailCreate, FailStart bool
	// Dies makes Create run OnCreate and then fail as a shim killed in
	// the middle of it does (ErrShimDied), and every later Delete fail
	// too.
	Dies bool
	// Pid is what Create returns.
	Pid int
	// OnCreate, if set, runs in Create: a test's way to break a later
	// step.
	OnCreate func(id string)
	// Containers are the containers created and not deleted; it must be
	// made before Create.
	Containers map[string]bool
	// ShutdownCalled and CloseCalled record that Shutdown and Close were
	// called.
	ShutdownCalled, CloseCalled bool
}

// Create adds req.ID to Containers and returns Pid, unless told to fail.
func (c *FakeConn) Create(_ context.Context, req *shimapi.CreateRequest) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.FailCreate {
		return 0, ErrInjected
	}
	if c.OnCreate != nil {
		c.OnCreate(req.ID)
	}
	if c.Dies {
		return 0, ErrShimDied
	}
	c.Containers[req.ID] = true
	return c.Pid, nil
}

// Start does nothing, unless told to fail.
func (c *FakeConn) Start(context.Context, string) error {
	if c.FailStart {
		return ErrInjected
	}
	return nil
}

// Delete removes id from Containers, unless the shim died.
func (c *FakeConn) Delete(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Dies {
		return ErrShimDied
	}
	delete(c.Containers, id)
	return nil
}

// Shutdown ends the shim, and with it its containers.
func (c *FakeConn) Shutdown(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ShutdownCalled = true
	c.Containers = map[string]bool{}
	return nil
}

// Close records that it was called.
func (c *FakeConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.CloseCalled = true
	return nil
}

// FakeShims is a shimclient.Launcher that launches FakeConns.
type FakeShims struct {
	mu sync.Mutex
	// FailLaunch makes Launch fail with ErrInjected.
	FailLaunch bool
	// Conn configures every connection launched: its Fail*, Dies, Pid
	// and OnCreate are copied.
	Conn FakeConn
	// Connected is what Connect returns (none: the shim is gone).
	Connected *FakeConn
	// Launched are the connections launched, in order.
	Launched []*FakeConn
}

// Launch returns a new FakeConn configured as Conn, unless told to fail.
func (f *FakeShims) Launch(context.Context, string) (shimclient.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailLaunch {
		return nil, ErrInjected
	}
	c := &FakeConn{
		FailCreate: f.Conn.FailCreate, FailStart: f.Conn.FailStart, Dies: f.Conn.Dies,
		Pid: f.Conn.Pid, OnCreate: f.Conn.OnCreate, Containers: map[string]bool{},
	}
	f.Launched = append(f.Launched, c)
	return c, nil
}

// Connect returns Connected, or fails with ErrInjected if there is none.
func (f *FakeShims) Connect(string) (shimclient.Conn, error) {
	if f.Connected == nil {
		return nil, ErrInjected
	}
	return f.Connected, nil
}

// FakeImages has one image, whose root filesystems are directories under
// a directory of its own.
type FakeImages struct {
	mu  sync.Mutex
	dir string
	img image.Image
	// FailStatus and FailRootfs make Status and CreateRootfs fail with
	// ErrInjected.
	FailStatus, FailRootfs bool
	// RootfsDirs are the root filesystems (and image mounts) created and
	// not removed: the directory by container ID.
	RootfsDirs map[string]string
	// Missing are references Status answers NotFound for.
	Missing map[string]bool
	// ImageFiles are the files (path in the image -> content) an image
	// mount holds, ImageSymlinks its symlinks (path -> target).
	ImageFiles, ImageSymlinks map[string]string
}

// NewFakeImages returns FakeImages whose image has config cfg and whose
// root filesystems are made under dir.
func NewFakeImages(dir string, cfg imgspec.ImageConfig) *FakeImages {
	return &FakeImages{
		dir:        dir,
		img:        image.Image{ID: mustImageID(strings.Repeat("f", 64)), Config: &imgspec.Image{Config: cfg}},
		RootfsDirs: map[string]string{},
	}
}

func mustImageID(s string) image.ID {
	id, err := image.ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// Status returns the one image, whatever the reference, unless told to
// fail.
func (f *FakeImages) Status(ref string) (*image.Image, error) {
	if f.FailStatus {
		return nil, ErrInjected
	}
	if f.Missing[ref] {
		return nil, errdefs.NotFound("image %q not found", ref)
	}
	img := f.img
	return &img, nil
}

// Pull fails: there is no registry in unit tests.
func (f *FakeImages) Pull(context.Context, string, image.Auth) (image.ID, error) {
	return image.ID{}, errdefs.Unavailable("no registry in unit tests")
}

// CreateRootfs makes an empty directory for container id, unless told to
// fail.
func (f *FakeImages) CreateRootfs(id string, _ image.ID, _ string, _ image.IDMappings) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FailRootfs {
		return "", ErrInjected
	}
	dir := filepath.Join(f.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f.RootfsDirs[id] = dir
	return dir, nil
}

// WriteRootfsDiff writes an empty tar: the fake's layers record no changes.
func (f *FakeImages) WriteRootfsDiff(id string, w io.Writer) error {
	return tar.NewWriter(w).Close()
}

// MountImage makes an empty directory for image mount id, as
// CreateRootfs does, or one holding the files of ImageFiles.
func (f *FakeImages) MountImage(id string, imageID image.ID, name string, ids image.IDMappings) (string, error) {
	dir, err := f.CreateRootfs(id, imageID, name, ids)
	if err != nil {
		return "", err
	}
	for p, content := range f.ImageFiles {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	for p, target := range f.ImageSymlinks {
		if err := os.Symlink(target, filepath.Join(dir, p)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// RemoveRootfs removes container id's directory, if it has one.
func (f *FakeImages) RemoveRootfs(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dir, ok := f.RootfsDirs[id]; ok {
		delete(f.RootfsDirs, id)
		return os.RemoveAll(dir)
	}
	return nil
}

// Rootfses lists none.
func (f *FakeImages) Rootfses() ([]image.Rootfs, error) { return nil, nil }
