package image

import (
	"context"
	"crypto/sha256"
	"sync"
)

// inflight merges concurrent pulls of the same image with the same
// credentials: the first caller starts the pull on a context of its own,
// later ones wait for it. The pull is cancelled only when every waiter has
// gone, so one impatient caller does not fail the others, and a pull
// nobody waits for any more stops (leaving no image behind).
type inflight struct {
	mu    sync.Mutex
	pulls map[string]*pull
}

type pull struct {
	cancel  context.CancelFunc
	waiters int
	done    chan struct{}
	id      ID
	err     error
}

func (f *inflight) init() { f.pulls = make(map[string]*pull) }

// do runs fn once per key at a time and returns its result to every
// caller that asked meanwhile. A caller whose ctx ends gets ctx's error.
func (f *inflight) do(ctx context.Context, key string, fn func(context.Context) (ID, error)) (id ID, err error, shared bool) {
	f.mu.Lock()
	p, ok := f.pulls[key]
	if !ok {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p = &pull{cancel: cancel, done: make(chan struct{})}
		f.pulls[key] = p
		go func() {
			p.id, p.err = fn(pctx)
			f.mu.Lock()
			if f.pulls[key] == p {
				delete(f.pulls, key)
			}
			f.mu.Unlock()
			cancel()
			close(p.done)
		}()
	}
	p.waiters++
	f.mu.Unlock()

	select {
	case <-p.done:
		f.leave(key, p)
		return p.id, p.err, ok
	case <-ctx.Done():
		f.leave(key, p)
		return ID{}, ctx.Err(), ok
	}
}

// leave drops one waiter. When none is left the pull is cancelled and
// forgotten, so a later caller starts afresh rather than joining it.
func (f *inflight) leave(key string, p *pull) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.waiters--
	if p.waiters == 0 {
		p.cancel()
		if f.pulls[key] == p {
			delete(f.pulls, key)
		}
	}
}

// hashStrings hashes its arguments unambiguously.
func hashStrings(ss ...string) []byte {
	h := sha256.New()
	for _, s := range ss {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}
