package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// errLayersBusy: another process is creating layers; no sweep now.
var errLayersBusy = errors.New("another process (cribd import) is adding layers to the store")

// layersLock opens <graph root>/crib-layers.lock and flocks it with how
// (LOCK_SH, or LOCK_EX|LOCK_NB); the returned func releases it.
func (s *Service) layersLock(how int) (func(), error) {
	path := filepath.Join(s.opts.GraphRoot, "crib-layers.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLayersBusy
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing drops the lock
}

// A pull that fails after some of its layers were committed leaves those
// layers in the store with no image over them: the library stores each
// layer as it arrives and does not take them back. Nothing else would ever
// remove them (kubelet's image GC deletes images, not layers), so cribd
// sweeps them: after a failed pull, once no pull or root filesystem
// creation is in flight in this process, and at start (RemoveOrphanLayers).
//
// A sweep cannot see the layers another process sharing the store (a
// `cribd import` running beside cribd) has committed but not yet put under
// an image. So an import holds <graph root>/crib-layers.lock shared while
// it runs, and a sweep takes it exclusively without waiting: while an
// import runs, the sweep is put off to the next failure or start.

// layerGate serialises sweeps with the operations that create layers
// before anything refers to them.
type layerGate struct {
	mu    sync.Mutex
	busy  int  // pulls and root filesystem creations in flight
	dirty bool // a pull failed since the last sweep
}

// enter marks a layer-creating operation in flight; it waits for a sweep
// that is running.
func (g *layerGate) enter() {
	g.mu.Lock()
	g.busy++
	g.mu.Unlock()
}

// leave ends an operation; failed asks for a sweep, which runs (with the
// gate held) when the last operation in flight leaves.
func (g *layerGate) leave(failed bool, sweep func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy--
	g.dirty = g.dirty || failed
	if g.busy == 0 && g.dirty {
		g.dirty = false
		sweep()
	}
}

// RemoveOrphanLayers deletes the layers no image or container refers to,
// and the store's temporary files a crash left. cribd calls it at start,
// before serving. While a `cribd import` runs it removes nothing and says
// so in the log.
func (s *Service) RemoveOrphanLayers() error {
	s.layers.mu.Lock()
	defer s.layers.mu.Unlock()
	err := s.removeOrphanLayers()
	if err == nil {
		err = s.removeStaleTempFiles()
	}
	if errors.Is(err, errLayersBusy) {
		s.log.WithError(err).Info("orphaned layers are left for the next start")
		return nil
	}
	return err
}

// removeStaleTempFiles deletes the temporary files the store library
// writes its JSON indexes through (.tmp-layers.json*, .tmp-mountpoints.json*,
// ...) and the blobs a pull or an import staged: a process killed between
// their creation and their rename or removal leaves them for good. Only at start, holding the layers lock, is no writer of
// this process or of an import between the two.
func (s *Service) removeStaleTempFiles() error {
	unlock, err := s.layersLock(unix.LOCK_EX | unix.LOCK_NB)
	if err != nil {
		return err
	}
	defer unlock()
	driver := s.store.GraphDriverName()
	var removed []string
	for _, root := range []string{s.opts.GraphRoot, s.opts.RunRoot} {
		for _, kind := range []string{"layers", "images", "containers"} {
			dir := filepath.Join(root, driver+"-"+kind)
			entries, err := os.ReadDir(dir)
			if err != nil {
				continue // not made yet
			}
			for _, e := range entries {
				if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), ".tmp-") {
					continue
				}
				p := filepath.Join(dir, e.Name())
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("remove stale %s: %w", p, err)
				}
				removed = append(removed, p)
			}
		}
	}
	// What a pull or an import killed midway staged (see pullTempDir).
	entries, err := os.ReadDir(s.pullTempDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list %s: %w", s.pullTempDir(), err)
	}
	for _, e := range entries {
		p := filepath.Join(s.pullTempDir(), e.Name())
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove stale %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	if len(removed) > 0 {
		s.log.WithField("files", removed).Info("removed the image store's temporary files left by a crash")
	}
	return nil
}

// sweepAfterFailure is the gate's sweep: errors are logged, not returned,
// since the failed pull has its own error to report. A sweep put off by
// an import is asked for again.
func (s *Service) sweepAfterFailure() {
	err := s.removeOrphanLayers()
	switch {
	case errors.Is(err, errLayersBusy):
		s.layers.dirty = true
		s.log.WithError(err).Info("layers left by a failed pull are removed after the next one")
	case err != nil:
		s.log.WithError(err).Warn("removing layers left by a failed pull")
	}
}

// holdForImport keeps sweeps (of any process) off the store while an
// import adds layers; the returned func ends it.
func (s *Service) holdForImport() (func(), error) {
	return s.layersLock(unix.LOCK_SH)
}

// removeOrphanLayers does the sweep; the caller holds the gate.
func (s *Service) removeOrphanLayers() error {
	unlock, err := s.layersLock(unix.LOCK_EX | unix.LOCK_NB)
	if err != nil {
		return err
	}
	defer unlock()
	layers, err := s.store.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	images, err := s.store.Images()
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	containers, err := s.store.Containers()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	parent := make(map[string]string, len(layers))
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	var roots []string
	for _, img := range images {
		roots = append(roots, img.TopLayer)
		roots = append(roots, img.MappedTopLayers...)
	}
	for _, c := range containers {
		roots = append(roots, c.LayerID)
	}
	orphans := orphanLayers(parent, roots)
	for _, id := range orphans {
		if err := s.store.DeleteLayer(id); err != nil {
			return fmt.Errorf("delete orphaned layer %s: %w", id, err)
		}
	}
	if len(orphans) > 0 {
		s.log.WithFields(logrus.Fields{"layers": len(orphans)}).Info("removed layers no image or container refers to")
		s.fsInvalidate()
	}
	return nil
}

// orphanLayers returns the layers of parent (layer → its parent, "" for a
// base layer) that are neither a root nor an ancestor of one, children
// before their parents so that each can be deleted in turn.
func orphanLayers(parent map[string]string, roots []string) []string {
	keep := make(map[string]bool)
	for _, id := range roots {
		for id != "" && !keep[id] {
			keep[id] = true
			id = parent[id]
		}
	}
	depth := func(id string) int {
		n := 0
		for seen := map[string]bool{}; id != "" && !seen[id]; id = parent[id] {
			seen[id] = true
			n++
		}
		return n
	}
	var out []string
	for id := range parent {
		if !keep[id] {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if di, dj := depth(out[i]), depth(out[j]); di != dj {
			return di > dj
		}
		return out[i] < out[j]
	})
	return out
}
