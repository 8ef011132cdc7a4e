package store

import (
	"strings"
	"sync"

	"github.com/crib-runtime/crib/api/errdefs"
)

// Index holds objects by ID and finds them by full ID or unique ID prefix,
// as the CRI lets clients name pods and containers. It is safe for
// concurrent use.
type Index[T any] struct {
	// kind names the objects in errors ("pod sandbox", "container"), and
	// field the request field that carries their IDs ("pod_sandbox_id").
	kind, field string

	mu   sync.RWMutex
	byID map[string]T
}

// NewIndex returns an empty Index of objects called kind, whose IDs
// requests carry in field: both are for error messages.
func NewIndex[T any](kind, field string) *Index[T] {
	return &Index[T]{kind: kind, field: field, byID: map[string]T{}}
}

// Add puts v under id, replacing what id held.
func (x *Index[T]) Add(id string, v T) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.byID[id] = v
}

// Delete removes id; an ID not held is no error.
func (x *Index[T]) Delete(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.byID, id)
}

// Get finds the object whose ID is id or, failing that, the one object
// whose ID starts with id. An empty id and an ambiguous prefix are
// errdefs.ErrInvalidArgument, no match errdefs.ErrNotFound.
func (x *Index[T]) Get(id string) (T, error) {
	var zero T
	if id == "" {
		return zero, errdefs.InvalidArgument("%s is empty", x.field)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if v, ok := x.byID[id]; ok {
		return v, nil
	}
	var (
		found T
		n     int
	)
	for full, v := range x.byID {
		if strings.HasPrefix(full, id) {
			if n++; n > 1 {
				return zero, errdefs.InvalidArgument("%s ID prefix %q is ambiguous", x.kind, id)
			}
			found = v
		}
	}
	if n == 0 {
		return zero, errdefs.NotFound("%s %q not found", x.kind, id)
	}
	return found, nil
}

// List returns every object held, in no order.
func (x *Index[T]) List() []T {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]T, 0, len(x.byID))
	for _, v := range x.byID {
		out = append(out, v)
	}
	return out
}
