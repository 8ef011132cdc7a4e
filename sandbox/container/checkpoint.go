package container

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/cleanup"
)

// The checkpoint archive's entries, as CRI-O and containerd lay it out (and
// as checkpointctl and kubelet's forensic tooling read it): CRIU's images,
// the container's metadata, its OCI spec and the changes it made to its
// image's files. CRIU's dump.log and stats-dump sit beside them.
const (
	checkpointImagesName = "checkpoint"
	checkpointConfigName = "config.dump"
	checkpointSpecName   = "spec.dump"
	checkpointRootfsName = "rootfs-diff.tar"
)

// checkpointsDir is the folder of the run directory that holds the
// checkpoints being written, one folder each; start-up removes what a
// crash left there (FinishPending).
const checkpointsDir = "checkpoints"

// CheckpointConfig is config.dump: the container's identity and image,
// with CRI-O's field names.
type CheckpointConfig struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	RootfsImage     string    `json:"rootfsImage,omitempty"`
	RootfsImageRef  string    `json:"rootfsImageRef,omitempty"`
	RootfsImageName string    `json:"rootfsImageName,omitempty"`
	Runtime         string    `json:"runtime,omitempty"`
	CreatedTime     time.Time `json:"createdTime"`
	CheckpointedAt  time.Time `json:"checkpointedTime"`
}

// CRIUPath finds CRIU as libcontainer and the OCI runtimes start it
// (`criu` in PATH); a node without it cannot checkpoint.
func CRIUPath() (string, error) {
	p, err := exec.LookPath("criu")
	if err != nil {
		return "", errdefs.FailedPrecondition("checkpoints need CRIU, which this node lacks (%v): install it (Debian and Ubuntu: the criu package)", err)
	}
	return p, nil
}

// Checkpoint writes a checkpoint archive of running container id to
// location (an absolute path, which kubelet gives below
// /var/lib/kubelet/checkpoints), leaving the container running: CRIU's
// dump of its processes through the pod's shim, config.dump, spec.dump and
// rootfs-diff.tar, as one uncompressed tar. The archive appears at location
// whole or not at all (written beside it, then renamed).
func (m *Manager) Checkpoint(ctx context.Context, id, location string) error {
	if location == "" || !filepath.IsAbs(location) || filepath.Clean(location) != location {
		return errdefs.InvalidArgument("location %q must be a clean absolute path for the checkpoint archive", location)
	}
	if fi, err := os.Stat(filepath.Dir(location)); err != nil {
		return errdefs.InvalidArgument("location %q: its directory must exist: %v", location, err)
	} else if !fi.IsDir() {
		return errdefs.InvalidArgument("location %q: %s is not a directory", location, filepath.Dir(location))
	}
	c, conn, err := m.runningContainer(id)
	if err != nil {
		return err
	}
	rec := c.published()
	if _, err := CRIUPath(); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}

	cu := cleanup.New(m.opts.Log)
	defer func() { _ = cu.Run() }()
	parent := filepath.Join(m.opts.RunDir, checkpointsDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	work, err := os.MkdirTemp(parent, rec.ID+"-")
	if err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	cu.Add("remove checkpoint work directory "+work, func(context.Context) error { return os.RemoveAll(work) })
	images := filepath.Join(work, checkpointImagesName)
	if err := os.Mkdir(images, 0o700); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}

	started := time.Now()
	if err := conn.Checkpoint(ctx, &shimapi.CheckpointRequest{ID: rec.ID, ImagesDir: images, WorkDir: work}); err != nil {
		if tail := criuErrors(filepath.Join(work, "dump.log")); tail != "" {
			err = fmt.Errorf("%w; CRIU's log ends: %s", err, tail)
		}
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	dumped := time.Since(started)

	spec, err := os.ReadFile(m.specPath(rec.PodID, rec.ID))
	if err != nil {
		return fmt.Errorf("checkpoint container %s: its spec: %w", rec.ID, err)
	}
	if err := os.WriteFile(filepath.Join(work, checkpointSpecName), spec, 0o600); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	var runtime string
	if p, err := m.pods.Lock(rec.PodID); err == nil {
		runtime = p.Record().RuntimeHandler
		p.Unlock()
	}
	config, err := json.Marshal(CheckpointConfig{
		ID: rec.ID, Name: rec.Name,
		RootfsImage: rec.Image, RootfsImageRef: rec.ImageID, RootfsImageName: rec.ImageRef,
		Runtime: runtime, CreatedTime: rec.CreatedAt, CheckpointedAt: time.Now().UTC(),
	})
	if err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	if err := os.WriteFile(filepath.Join(work, checkpointConfigName), config, 0o600); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	if err := m.writeRootfsDiff(rec.ID, filepath.Join(work, checkpointRootfsName)); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	if err := writeArchive(work, location); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	m.opts.Log.WithField("container", rec.ID).Infof("checkpointed container %s to %s (CRIU dump %s, all %s)",
		rec.Name, location, dumped.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	return nil
}

// criuErrors is the last error lines of CRIU's log at path (the work
// directory goes with the failed call), "" if there are none.
func criuErrors(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var errs []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "Error") {
			errs = append(errs, strings.TrimSpace(l))
		}
	}
	if len(errs) > 3 {
		errs = errs[len(errs)-3:]
	}
	return strings.Join(errs, " | ")
}

// writeRootfsDiff writes container id's writable layer as a tar to path.
func (m *Manager) writeRootfsDiff(id, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = m.opts.Images.WriteRootfsDiff(id, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeArchive tars the contents of dir (names relative to it) into a file
// beside location and renames it to location. The partial file is opened
// without following a symlink and removed on failure; kubelet's location
// directory is root's.
func writeArchive(dir, location string) (err error) {
	partial := location + ".crib-partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("checkpoint archive: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(partial)
		}
	}()
	if err := tarDir(f, dir); err != nil {
		return fmt.Errorf("checkpoint archive %s: %w", partial, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("checkpoint archive %s: %w", partial, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("checkpoint archive %s: %w", partial, err)
	}
	if err := os.Rename(partial, location); err != nil {
		return fmt.Errorf("checkpoint archive: %w", err)
	}
	return nil
}

// tarDir writes the regular files and directories below dir to w as a
// tar stream (CRIU's images and the files beside them are nothing else).
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return fmt.Errorf("%s: not a regular file or directory", rel)
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// removeCheckpointLeftovers removes the work directories of checkpoints a
// crash cut short: their archives were never renamed into place.
func (m *Manager) removeCheckpointLeftovers() {
	dir := filepath.Join(m.opts.RunDir, checkpointsDir)
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.opts.Log.WithError(err).Warnf("recover: remove checkpoint work directories in %s", dir)
	}
}
