package container

import (
	"fmt"
	"sync"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox/internal/sandboxtest"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// The fakes below stand at the pods' side of the containers for the
// rollback and shim death tests; those of the seams pods share (the
// shim, the images) are sandboxtest's.

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
	conn     *sandboxtest.FakeConn
	filesDir string
}

func (p *fakePod) Record() state.Sandbox { return p.rec }

func (p *fakePod) Shim() (shimclient.Conn, error) {
	if p.rec.ShimDied != nil {
		return nil, errdefs.FailedPrecondition("pod sandbox %s is not ready: its shim died", p.rec.ID)
	}
	if p.conn == nil {
		return nil, fmt.Errorf("shim of pod %s: %w", p.rec.ID, sandboxtest.ErrInjected)
	}
	return p.conn, nil
}

func (p *fakePod) FilesDir() string { return p.filesDir }

func (p *fakePod) Unlock() { p.mu.Unlock() }
