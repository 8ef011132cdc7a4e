package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Usage is the space and inodes used under one mountpoint.
type Usage struct {
	Mountpoint string
	Timestamp  time.Time
	UsedBytes  uint64
	Inodes     uint64
	// Fs is the file system holding Mountpoint as of Timestamp; set by
	// WritableLayerUsage only (for the container_fs_* metrics).
	Fs FsCapacity
}

// FsCapacity is a file system's size and free space, in bytes and inodes.
type FsCapacity struct {
	CapacityBytes, AvailableBytes uint64
	Inodes, InodesFree            uint64
}

// FsInfo is what ImageFsInfo reports: the image store and the containers'
// writable layers. Both live in the store's graph root.
type FsInfo struct {
	Images     Usage
	Containers Usage
}

// fsCache keeps the last walk for a short while: kubelet asks every few
// seconds and a walk of a big store is not free.
type fsCache struct {
	at   time.Time
	info FsInfo
}

const fsCacheTTL = 5 * time.Second

// FsInfo measures the store: the bytes (allocated blocks) and inodes of
// the images' layers, and of the containers' layers and files.
func (s *Service) FsInfo() (FsInfo, error) {
	s.fsMu.Lock()
	defer s.fsMu.Unlock()
	if !s.fs.at.IsZero() && time.Since(s.fs.at) < fsCacheTTL {
		return s.fs.info, nil
	}
	containerDirs, err := s.containerDirs()
	if err != nil {
		return FsInfo{}, err
	}
	root := s.store.GraphRoot()
	var imgs, ctrs usage
	err = walk(root, func(path string) *usage {
		if containerDirs[path] {
			return &ctrs
		}
		return nil
	}, &imgs)
	if err != nil {
		return FsInfo{}, fmt.Errorf("image fs usage of %s: %w", root, err)
	}
	now := time.Now()
	s.fs = fsCache{at: now, info: FsInfo{
		Images:     Usage{Mountpoint: root, Timestamp: now, UsedBytes: imgs.bytes, Inodes: imgs.inodes},
		Containers: Usage{Mountpoint: root, Timestamp: now, UsedBytes: ctrs.bytes, Inodes: ctrs.inodes},
	}}
	return s.fs.info, nil
}

// fsInvalidate makes the next FsInfo walk again.
func (s *Service) fsInvalidate() {
	s.fsMu.Lock()
	s.fs = fsCache{}
	s.fsMu.Unlock()
}

// containerDirs are the directories holding containers' writable layers
// and files: they count as the container filesystem, not the image one.
func (s *Service) containerDirs() (map[string]bool, error) {
	cs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list store containers: %w", err)
	}
	root := s.store.GraphRoot()
	driver := s.store.GraphDriverName()
	dirs := map[string]bool{filepath.Join(root, driver+"-containers"): true}
	for _, c := range cs {
		if c.LayerID != "" {
			dirs[filepath.Join(root, driver, c.LayerID)] = true
		}
	}
	return dirs, nil
}

type usage struct{ bytes, inodes uint64 }

// walk adds every file under root to into (or to the usage sub returns
// for a directory, for everything below it), counting a hard-linked inode
// once. Files vanishing meanwhile are skipped.
func walk(root string, sub func(path string) *usage, into *usage) error {
	seen := map[[2]uint64]bool{}
	var visit func(dir string, u *usage) error
	visit = func(dir string, u *usage) error {
		return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			if path != dir && d.IsDir() {
				if d.Name() == "merged" {
					return filepath.SkipDir // a mounted container rootfs: counted in its layers
				}
				if other := sub(path); other != nil {
					if err := visit(path, other); err != nil {
						return err
					}
					return filepath.SkipDir
				}
			}
			fi, err := d.Info()
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return err
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			k := [2]uint64{st.Dev, st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
			u.inodes++
			u.bytes += uint64(st.Blocks) * 512
			return nil
		})
	}
	return visit(root, into)
}
