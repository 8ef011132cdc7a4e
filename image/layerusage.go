package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
)

// LayerUsageRefresh is how old a writable layer's measurement may get
// before a request for it starts a new one. kubelet asks for every
// container's stats every 10 s (and evicts on ephemeral storage no faster),
// containerd's snapshot syncer measures every 10 s too.
const LayerUsageRefresh = 10 * time.Second

// WritableLayerUsage is the last measurement of container id's writable
// layer (the overlay upper directory): the bytes its files occupy on disk
// and its inodes, under the store's graph root as Mountpoint. It never
// walks the layer itself, so that ListContainerStats costs a map lookup
// per container however big the layers are: a measurement older than
// LayerUsageRefresh, or none yet, queues one for a background walker, and
// false means none has been made yet (a container just created, or cribd
// just started).
func (s *Service) WritableLayerUsage(id string) (Usage, bool) {
	return s.layerUsage.get(id)
}

// measureLayer walks container id's writable layer.
func (s *Service) measureLayer(id string) (Usage, error) {
	c, err := s.store.Container(id)
	if err != nil {
		return Usage{}, fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	driver, err := s.store.GraphDriver()
	if err != nil {
		return Usage{}, fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	now := time.Now()
	meta, err := driver.Metadata(c.LayerID)
	if err != nil {
		return Usage{}, fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	u := Usage{Mountpoint: s.store.GraphRoot(), Timestamp: now}
	if u.Fs, err = fsCapacity(u.Mountpoint); err != nil {
		return Usage{}, fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	if upper := meta["UpperDir"]; upper != "" {
		bytes, inodes, err := treeUsage(upper)
		if err != nil {
			return Usage{}, fmt.Errorf("writable layer of container %s: %w", id, err)
		}
		u.UsedBytes, u.Inodes = bytes, inodes
		return u, nil
	}
	// A driver without an upper directory (vfs: the layer is a full
	// copy) has only the library's own count, of apparent sizes.
	du, err := driver.ReadWriteDiskUsage(c.LayerID)
	if err != nil {
		return Usage{}, fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	u.UsedBytes, u.Inodes = uint64(max(du.Size, 0)), uint64(max(du.InodeCount, 0))
	return u, nil
}

// fsCapacity is statfs(2) of the file system holding path.
func fsCapacity(path string) (FsCapacity, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FsCapacity{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bsize := uint64(st.Bsize) // positive
	return FsCapacity{
		CapacityBytes: st.Blocks * bsize, AvailableBytes: st.Bavail * bsize,
		Inodes: st.Files, InodesFree: st.Ffree,
	}, nil
}

// treeUsage counts the blocks allocated to the files under dir, in bytes,
// and their inodes (dir's own among them), a hard-linked inode once: what
// du(1) reports, and what kubelet compares with ephemeral-storage limits.
// The walk stays below dir (os.Root), though the container owning it may
// swap a directory for a symbolic link meanwhile; files vanishing meanwhile
// are skipped.
func treeUsage(dir string) (bytes, inodes uint64, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, 0, err
	}
	defer root.Close()
	seen := map[uint64]struct{}{} // one file system: inode numbers are unique
	err = fs.WalkDir(root.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if _, dup := seen[st.Ino]; dup {
			return nil
		}
		seen[st.Ino] = struct{}{}
		bytes += uint64(st.Blocks) * 512 // st_blocks counts 512-byte units
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return bytes, uint64(len(seen)), nil
}

// layerUsage caches the measurements of writable layers, by container ID.
// Requests only read it; one walker goroutine, started when there is work
// and gone when there is none, measures the layers requests found stale,
// one after another, so that at most one core's worth of walking happens
// however many containers there are and however often kubelet asks.
type layerUsage struct {
	refresh time.Duration
	measure func(id string) (Usage, error)
	// gone says whether measure's error means the layer no longer exists.
	gone func(error) bool
	log  logrus.FieldLogger
	now  func() time.Time

	mu      sync.Mutex
	entries map[string]*layerEntry
	queue   []string
	running bool // a walker drains queue
	closed  bool
	walkers sync.WaitGroup
}

type layerEntry struct {
	usage  Usage // zero Timestamp: not measured yet
	queued bool
}

func newLayerUsage(measure func(string) (Usage, error), log logrus.FieldLogger) *layerUsage {
	return &layerUsage{
		refresh: LayerUsageRefresh, measure: measure, log: log, now: time.Now,
		gone:    func(err error) bool { return errors.Is(err, storage.ErrContainerUnknown) },
		entries: map[string]*layerEntry{},
	}
}

// get returns id's last measurement, and queues a new one if it is stale.
func (u *layerUsage) get(id string) (Usage, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.entries[id]
	if e == nil {
		e = &layerEntry{}
		u.entries[id] = e
	}
	if e.usage.Timestamp.IsZero() || u.now().Sub(e.usage.Timestamp) >= u.refresh {
		u.enqueueLocked(id, e)
	}
	return e.usage, !e.usage.Timestamp.IsZero()
}

// add queues a first measurement of a new layer, so that kubelet's first
// stats request finds one.
func (u *layerUsage) add(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := &layerEntry{}
	u.entries[id] = e
	u.enqueueLocked(id, e)
}

// forget drops a removed layer; a walk of it under way is discarded.
func (u *layerUsage) forget(id string) {
	u.mu.Lock()
	delete(u.entries, id)
	u.mu.Unlock()
}

func (u *layerUsage) enqueueLocked(id string, e *layerEntry) {
	if e.queued || u.closed {
		return
	}
	e.queued = true
	u.queue = append(u.queue, id)
	if !u.running {
		u.running = true
		u.walkers.Add(1)
		go u.walk()
	}
}

// walk measures the queued layers until the queue is empty.
func (u *layerUsage) walk() {
	defer u.walkers.Done()
	for {
		u.mu.Lock()
		if len(u.queue) == 0 || u.closed {
			u.running = false
			u.mu.Unlock()
			return
		}
		id := u.queue[0]
		u.queue = u.queue[1:]
		e := u.entries[id]
		u.mu.Unlock()
		if e == nil {
			continue // forgotten while queued
		}
		usage, err := u.measure(id)
		u.mu.Lock()
		if u.entries[id] == e {
			e.queued = false
			switch {
			case err == nil:
				e.usage = usage
			case u.gone(err):
				delete(u.entries, id)
			default:
				u.log.WithError(err).WithField("container", id).Debug("writable layer usage")
			}
		}
		u.mu.Unlock()
	}
}

// close stops the walker after its current layer and waits for it.
func (u *layerUsage) close() {
	u.mu.Lock()
	u.closed = true
	u.queue = nil
	u.mu.Unlock()
	u.walkers.Wait()
}
