// Package image is crib's image service: it pulls images from registries
// into a local go.podman.io/storage store (overlay by default), and answers
// what kubelet asks about them: status, list, removal and filesystem usage.
// The registry protocol, layer unpacking and whiteouts are the libraries'
// job; this package adds CRI naming, merged pulls, pinning, progress logs,
// imports of image archives (`cribd import`), and errors that say which
// registry answered what.
package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// Options configures a Service.
type Options struct {
	// GraphRoot holds the image store (layers, images, containers' layers).
	GraphRoot string
	// RunRoot holds the store's runtime state (mount counts, locks).
	RunRoot string
	// Driver is the graph driver: "overlay" or "vfs".
	Driver string
	// RegistriesConf is a containers-registries.conf(5) file; empty means
	// the system's default.
	RegistriesConf string
	// AuthFile is a docker-config credentials file used when a request
	// carries none; empty means none.
	AuthFile string
	// SignaturePolicy is a containers-policy.json(5) file; empty accepts all.
	SignaturePolicy string
	// Pinned are references reported pinned (the pause image among them).
	Pinned []string
	// ProgressTimeout cancels a pull with no progress for this long; 0 never.
	ProgressTimeout time.Duration
	// UserAgent is sent to registries.
	UserAgent string
	// ObservePull, if set, is told of each download from a registry once
	// it ends: how long it took, the bytes of blobs it fetched, its error.
	ObservePull func(took time.Duration, bytes uint64, err error)
	Log         logrus.FieldLogger
}

// Service is the image service. It is safe for concurrent use.
type Service struct {
	opts   Options
	store  storage.Store
	policy *signature.Policy
	log    logrus.FieldLogger
	pinned map[string]bool // normalised names

	pulls inflight
	// layers serialises sweeps of orphaned layers with pulls and root
	// filesystem creations.
	layers layerGate

	infoMu sync.Mutex
	info   map[string]*configInfo // by image ID; images are immutable

	fsMu sync.Mutex
	fs   fsCache

	// layerUsage caches containers' writable layer usage (layerusage.go).
	layerUsage *layerUsage

	// search is registries.conf's unqualified-search-registries.
	search []string
}

// New opens (creating if needed) the image store and returns the service.
func New(opts Options) (*Service, error) {
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	if opts.Driver == "" {
		opts.Driver = "overlay"
	}
	if opts.GraphRoot == "" || opts.RunRoot == "" {
		return nil, errors.New("image store: graph root and run root are required")
	}
	// Searchable by all (not readable): root in a pod's user namespace is
	// no one on the host, yet must reach its root filesystem below these.
	// Set on existing roots too, which crib made 0700 before it offered
	// user namespaces.
	for _, d := range []string{opts.GraphRoot, opts.RunRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("image store: %w", err)
		}
	}
	// Pulls and imports stage blobs here instead of /var/tmp, where a
	// crash mid-pull would leave them among others' files; start-up
	// empties it (removeStaleTempFiles).
	if err := os.MkdirAll(filepath.Join(opts.GraphRoot, pullTempName), 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	policy, err := loadPolicy(opts.SignaturePolicy)
	if err != nil {
		return nil, err
	}
	pinned := make(map[string]bool, len(opts.Pinned))
	for _, p := range opts.Pinned {
		named, err := Normalize(p)
		if err != nil {
			return nil, fmt.Errorf("pinned image: %w", err)
		}
		pinned[named.String()] = true
	}
	store, err := storage.GetStore(storage.StoreOptions{
		RunRoot:         opts.RunRoot,
		GraphRoot:       opts.GraphRoot,
		GraphDriverName: opts.Driver,
	})
	if err != nil {
		return nil, fmt.Errorf("open image store at %s (driver %s): %w", opts.GraphRoot, opts.Driver, err)
	}
	s := &Service{
		opts:   opts,
		store:  store,
		policy: policy,
		log:    opts.Log,
		pinned: pinned,
		info:   make(map[string]*configInfo),
	}
	s.pulls.init()
	s.layerUsage = newLayerUsage(s.measureLayer, opts.Log)
	sys, err := s.systemContext(Auth{})
	if err != nil {
		return nil, err
	}
	if s.search, err = searchRegistries(sys); err != nil {
		store.Shutdown(false)
		return nil, err
	}
	s.log.WithFields(logrus.Fields{"root": opts.GraphRoot, "driver": store.GraphDriverName()}).Info("image store open")
	return s, nil
}

// pullTempName is the directory under the graph root where the image
// library stages the blobs of a pull or an import.
const pullTempName = "crib-tmp"

func (s *Service) pullTempDir() string { return filepath.Join(s.opts.GraphRoot, pullTempName) }

// Store is the underlying store, for the container manager's layers.
func (s *Service) Store() storage.Store { return s.store }

// Close unmounts every layer the store mounted and releases it. It is
// called once, when cribd exits.
func (s *Service) Close() error {
	s.layerUsage.close()
	if _, err := s.store.Shutdown(true); err != nil {
		return fmt.Errorf("shut down image store: %w", err)
	}
	return nil
}

// loadPolicy reads a signature policy file, or accepts everything.
func loadPolicy(path string) (*signature.Policy, error) {
	if path == "" {
		return &signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}}, nil
	}
	p, err := signature.NewPolicyFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("image.signature_policy %s: %w", path, err)
	}
	// Pulls read sources through checkedRef, which hides sigstore
	// signatures from the policy: an image would be refused as unsigned.
	if b, err := json.Marshal(p); err != nil {
		return nil, fmt.Errorf("image.signature_policy %s: %w", path, err)
	} else if bytes.Contains(b, []byte(`"type":"sigstoreSigned"`)) {
		return nil, fmt.Errorf("image.signature_policy %s: sigstoreSigned requirements are not supported; use signedBy (GPG simple signing)", path)
	}
	return p, nil
}

// memoryBlobInfoCache, as a blob-info cache directory, makes each copy
// use a memory-only cache: c/image falls back to one when it cannot create
// the directory. The persistent (SQLite) cache costs a pull tens of
// milliseconds (an open and an fsync per transaction) and buys crib
// nothing it needs: the store finds layers it already holds by their
// compressed digest without it, and crib never pushes, which is what its
// blob locations are for. TestMemoryBlobInfoCache guards the fallback.
const memoryBlobInfoCache = "/dev/null"

// systemContext is the libraries' view of our configuration, with the
// credentials of one request.
func (s *Service) systemContext(auth Auth) (*types.SystemContext, error) {
	sys := &types.SystemContext{
		BlobInfoCacheDir:        memoryBlobInfoCache,
		DockerRegistryUserAgent: s.opts.UserAgent,
		BigFilesTemporaryDir:    s.pullTempDir(),
	}
	if s.opts.RegistriesConf != "" {
		sys.SystemRegistriesConfPath = s.opts.RegistriesConf
		sys.SystemRegistriesConfDirPath = s.opts.RegistriesConf + ".d"
	}
	if err := auth.apply(sys, s.opts.AuthFile); err != nil {
		return nil, err
	}
	return sys, nil
}
