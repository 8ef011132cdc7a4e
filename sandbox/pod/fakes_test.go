package pod

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/crib-runtime/crib/internal/nsfs"
	"github.com/crib-runtime/crib/network"
	"github.com/crib-runtime/crib/sandbox/internal/sandboxtest"
)

// The fakes below stand at the pods' own seams (Config.Pinner, Network,
// and the containers' side) for the rollback and shim death tests: each
// keeps what is held through it, so that a test can tell that a failed
// Run left nothing, and fails a step when told to. Those of the seams
// containers share (Shims, Images) are sandboxtest's.

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
		return sandboxtest.ErrInjected
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
		return nil, sandboxtest.ErrInjected
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
		return sandboxtest.ErrInjected
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
		return nil, sandboxtest.ErrInjected
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
