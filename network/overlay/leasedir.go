package overlay

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// leaseExt ends every lease file's name: <node name>.json.
const leaseExt = ".json"

// DirSource is a PeerSource over a directory every node can read and write
// (a shared filesystem; in tests, one temp dir): one JSON file per node,
// written atomically by that node. It suits tests and small static clusters.
type DirSource struct {
	dir     string
	log     logrus.FieldLogger
	w       *fsnotify.Watcher
	changes chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewDirSource watches dir, creating it if needed.
func NewDirSource(dir string, log logrus.FieldLogger) (*DirSource, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lease dir: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch lease dir: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch lease dir %s: %w", dir, err)
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	s := &DirSource{dir: dir, log: log, w: w, changes: make(chan struct{}, 1), done: make(chan struct{})}
	go s.watch()
	return s, nil
}

func (s *DirSource) watch() {
	defer close(s.done)
	defer close(s.changes)
	for {
		select {
		case ev, ok := <-s.w.Events:
			if !ok {
				return
			}
			if !isLeaseFile(filepath.Base(ev.Name)) {
				continue
			}
		case err, ok := <-s.w.Errors:
			if !ok {
				return
			}
			s.log.WithError(err).Warn("overlay: watching lease dir")
		}
		select {
		case s.changes <- struct{}{}:
		default: // a signal is pending already
		}
	}
}

func isLeaseFile(name string) bool {
	return strings.HasSuffix(name, leaseExt) && !strings.HasPrefix(name, ".")
}

// Publish writes <dir>/<name>.json atomically.
func (s *DirSource) Publish(ctx context.Context, own Lease) error {
	if err := own.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(own, "", "  ")
	if err != nil {
		return fmt.Errorf("publish lease: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, own.Name+leaseExt), append(b, '\n')); err != nil {
		return fmt.Errorf("publish lease: %w", err)
	}
	return nil
}

// Leases reads every lease file; one that does not parse, or whose name
// differs from its node's, is logged and skipped.
func (s *DirSource) Leases(ctx context.Context) ([]Lease, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read lease dir: %w", err)
	}
	var out []Lease
	for _, e := range ents {
		if e.IsDir() || !isLeaseFile(e.Name()) {
			continue
		}
		path := filepath.Join(s.dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			if !os.IsNotExist(err) {
				s.log.WithError(err).WithField("file", path).Warn("overlay: skipping lease")
			}
			continue
		}
		var l Lease
		if err := json.Unmarshal(b, &l); err != nil {
			s.log.WithError(err).WithField("file", path).Warn("overlay: skipping lease")
			continue
		}
		if l.Name+leaseExt != e.Name() {
			s.log.WithField("file", path).Warnf("overlay: skipping lease of node %q in another node's file", l.Name)
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// Changes signals after a lease file appeared, changed or went.
func (s *DirSource) Changes() <-chan struct{} { return s.changes }

// Close stops watching; Changes is closed.
func (s *DirSource) Close() error {
	var err error
	s.once.Do(func() {
		err = s.w.Close()
		<-s.done
	})
	return err
}

// writeFileAtomic writes data to a temp file next to path, syncs it and
// renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
