// Package network attaches pods to the node's CNI network.
//
// A Manager runs the CNI plugins (through libcni) of one network config, the
// first file in the conf dir by name, which it reloads whenever the conf dir
// changes. Setup runs ADD for a pod's pinned network namespace and returns
// its IPs; Teardown runs DEL and is safe to repeat, also after the namespace
// is gone. Host-network pods never come here.
//
// Errors wrap the sentinels of api/errdefs; plugin failures read as kubelet
// users know them, e.g.
//
//	failed to setup network for sandbox "<id>": plugin type="bridge" failed (add): <plugin message>
package network

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/errdefs"
)

// Options say where the network config and plugins are (see api/config's
// Network section).
type Options struct {
	// ConfDir holds the network configs; it is created if missing.
	ConfDir string
	// BinDirs are searched for plugin executables, in order.
	BinDirs []string
	// CacheDir is libcni's cache of ADD results and the args they were made
	// with, which DEL reuses.
	CacheDir string
	// Log receives config changes and plugin failures; nil means logrus's
	// standard logger.
	Log logrus.FieldLogger
	// Observe, if set, is told of each CNI operation ("ADD" or "DEL" of one
	// network list) once it returns: how long it took and its error.
	Observe func(op string, took time.Duration, err error)
}

// Manager runs CNI ADD and DEL for pods. It is safe for concurrent use.
type Manager struct {
	opts    Options
	log     logrus.FieldLogger
	cni     *libcni.CNIConfig
	watcher *fsnotify.Watcher
	done    chan struct{} // closed when the watch loop has returned

	closeOnce sync.Once
	closeErr  error

	mu   sync.RWMutex
	conf loadedConfig // guarded by mu
}

// New loads the current network config from opts.ConfDir and keeps it up to
// date by watching the directory until Close. A missing or invalid config is
// not an error here: Ready reports it.
func New(opts Options) (*Manager, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.ConfDir, 0o755); err != nil {
		return nil, fmt.Errorf("network config dir: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch network config dir: %w", err)
	}
	// Watch before the first load, so no change slips in between.
	if err := w.Add(opts.ConfDir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch network config dir %s: %w", opts.ConfDir, err)
	}
	log := opts.Log
	if log == nil {
		log = logrus.StandardLogger()
	}
	m := &Manager{
		opts:    opts,
		log:     log,
		cni:     libcni.NewCNIConfigWithCacheDir(opts.BinDirs, opts.CacheDir, nil),
		watcher: w,
		done:    make(chan struct{}),
	}
	m.reload()
	go m.watch()
	return m, nil
}

// observe passes one CNI operation to Options.Observe, if set.
func (m *Manager) observe(op string, start time.Time, err error) {
	if m.opts.Observe != nil {
		m.opts.Observe(op, time.Since(start), err)
	}
}

func (o Options) validate() error {
	for key, dir := range map[string]string{"ConfDir": o.ConfDir, "CacheDir": o.CacheDir} {
		if !filepath.IsAbs(dir) {
			return errdefs.InvalidArgument("network options: %s %q is not an absolute path", key, dir)
		}
	}
	if len(o.BinDirs) == 0 {
		return errdefs.InvalidArgument("network options: no plugin directory")
	}
	return nil
}

// Close stops watching the conf dir. Setup and Teardown keep working with the
// last config loaded.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.watcher.Close()
		<-m.done
	})
	return m.closeErr
}

// Ready reports whether a valid network config is loaded. When it is not,
// message says why, e.g. "no network config found in /etc/cni/net.d" or the
// parse error naming the file; kubelet shows it as the NetworkReady reason.
func (m *Manager) Ready() (ok bool, message string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.conf.err != nil {
		return false, m.conf.err.Error()
	}
	return true, ""
}

// Info describes the network config in use, for Status(verbose) (crictl
// info).
type Info struct {
	ConfDir    string   `json:"confDir"`
	File       string   `json:"file,omitempty"`
	Network    string   `json:"network,omitempty"`
	CNIVersion string   `json:"cniVersion,omitempty"`
	Plugins    []string `json:"plugins,omitempty"`
	BinDirs    []string `json:"binDirs"`
	// Error is why no config is in use.
	Error string `json:"error,omitempty"`
}

// Info reports the network config in use, or why there is none.
func (m *Manager) Info() any {
	m.mu.RLock()
	defer m.mu.RUnlock()
	info := Info{ConfDir: m.opts.ConfDir, BinDirs: m.opts.BinDirs, File: m.conf.file}
	if m.conf.err != nil {
		info.Error = m.conf.err.Error()
		return info
	}
	if l := m.conf.list; l != nil {
		info.Network, info.CNIVersion = l.Name, l.CNIVersion
		for _, p := range l.Plugins {
			info.Plugins = append(info.Plugins, p.Network.Type)
		}
	}
	return info
}

// current returns the loaded config list, or why there is none.
func (m *Manager) current() (*libcni.NetworkConfigList, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.conf.list, m.conf.err
}
