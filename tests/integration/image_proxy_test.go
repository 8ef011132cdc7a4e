//go:build integration

package integration

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowProxy sits in front of a registry and holds every blob download of
// slow.test's images until Release, so a test can act while a pull is in
// flight. It counts manifest fetches by tag.
type slowProxy struct {
	Addr string

	mu        sync.Mutex
	manifests int
	blobSeen  chan struct{}
	seenOnce  sync.Once
	release   chan struct{}
	relOnce   sync.Once
}

func startSlowProxy(t *testing.T, upstream string) *slowProxy {
	t.Helper()
	p := &slowProxy{blobSeen: make(chan struct{}), release: make(chan struct{})}
	target, _ := url.Parse("http://" + upstream)
	rp := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/library/busybox/manifests/latest") && r.Method == http.MethodGet {
			p.mu.Lock()
			p.manifests++
			p.mu.Unlock()
		}
		if strings.Contains(r.URL.Path, "/library/busybox/blobs/") {
			p.seenOnce.Do(func() { close(p.blobSeen) })
			select {
			case <-p.release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		p.Release()
		_ = srv.Close()
	})
	return p
}

// WaitBlob waits until a blob download is being held.
func (p *slowProxy) WaitBlob(t *testing.T) {
	t.Helper()
	select {
	case <-p.blobSeen:
	case <-time.After(30 * time.Second):
		t.Fatal("no blob download reached the proxy in 30s")
	}
}

// Release lets held and later downloads through.
func (p *slowProxy) Release() { p.relOnce.Do(func() { close(p.release) }) }

// ManifestGets is how many times the busybox:latest manifest was fetched.
func (p *slowProxy) ManifestGets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.manifests
}
