package store

import (
	"fmt"
	"sync"

	"github.com/crib-runtime/crib/api/errdefs"
)

// ReservedError is Reserve's refusal: the name is held by another ID. It
// is an errdefs.ErrAlreadyExists; callers that name what the name and ID
// belong to (a pod, a container) read its fields.
type ReservedError struct {
	// Name is the name asked for.
	Name string
	// ID is the ID that holds it.
	ID string
}

func (e *ReservedError) Error() string {
	return fmt.Sprintf("name %q is reserved for %s", e.Name, e.ID)
}

// Is makes a ReservedError an errdefs.ErrAlreadyExists.
func (e *ReservedError) Is(target error) bool { return target == errdefs.ErrAlreadyExists }

// Registrar reserves names for IDs, at most one ID per name, as
// containerd's internal/registrar does. It is safe for concurrent use.
type Registrar struct {
	mu    sync.Mutex
	names map[string]string // name -> ID
}

// NewRegistrar returns a Registrar with no name reserved.
func NewRegistrar() *Registrar {
	return &Registrar{names: map[string]string{}}
}

// Reserve claims name for id. A name already held by id stays so; one held
// by another ID is a *ReservedError.
func (r *Registrar) Reserve(name, id string) error {
	if name == "" || id == "" {
		return fmt.Errorf("reserve name %q for ID %q: %w", name, id, errdefs.ErrInvalidArgument)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, ok := r.names[name]; ok && other != id {
		return &ReservedError{Name: name, ID: other}
	}
	r.names[name] = id
	return nil
}

// Release frees name if id holds it: a release by an ID that does not hold
// the name (a failed Run's undo, after another took it) changes nothing.
func (r *Registrar) Release(name, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[name] == id {
		delete(r.names, name)
	}
}

// Get returns the ID that holds name, and whether one does.
func (r *Registrar) Get(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.names[name]
	return id, ok
}
