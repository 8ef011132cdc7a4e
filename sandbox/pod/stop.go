package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/failpoint"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// Stop stops a pod: its pause process and shim end, its network is torn
// down (CNI DEL, always before the netns pin goes), and its namespaces and
// /dev/shm are released. The record stays until Remove. Stop is idempotent:
// a stopped pod, or an unknown ID, is a success.
func (m *Pods) Stop(ctx context.Context, id string) error {
	p, err := m.lockForTeardown(id)
	if p == nil {
		return err
	}
	defer p.mu.Unlock()
	return m.stopLocked(ctx, p)
}

// lockForTeardown finds a pod and locks it. An unknown ID gives (nil, nil):
// Stop and Remove succeed for pods that are already gone.
func (m *Pods) lockForTeardown(id string) (*pod, error) {
	p, err := m.lookup(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	return p, nil
}

func (m *Pods) stopLocked(ctx context.Context, p *pod) error {
	rec := p.rec
	log := m.opts.Log.WithField("pod", rec.ID)
	if rec.Phase == state.PhaseStopped {
		return nil
	}
	if err := m.ctrs.StopAll(ctx, m.locked(p)); err != nil {
		return fmt.Errorf("stop pod %s: %w", rec.ID, err)
	}
	failpoint.Inject("sandbox.stop.after-containers")
	if err := m.stopPause(ctx, p); err != nil {
		return err
	}
	failpoint.Inject("sandbox.stop.after-pause")
	if rec.NetworkAttached || (rec.Phase == state.PhaseCreating && rec.NetNSPath != "") {
		if err := m.opts.Network.Teardown(ctx, m.networkRequest(&rec)); err != nil {
			return err
		}
		rec.NetworkAttached = false
		if err := m.save(&rec); err != nil {
			return err
		}
		p.setRec(rec)
		failpoint.Inject("sandbox.stop.after-network")
	}
	for _, path := range []string{rec.NetNSPath, rec.UTSPath, rec.IPCPath, rec.UserNSPath} {
		if path == "" {
			continue
		}
		if err := m.opts.Pinner.Unpin(path); err != nil {
			return fmt.Errorf("stop pod %s: %w", rec.ID, err)
		}
	}
	if rec.ShmPath != "" {
		if err := m.opts.Pinner.Unmount(rec.ShmPath); err != nil {
			return fmt.Errorf("stop pod %s: %w", rec.ID, err)
		}
	}
	failpoint.Inject("sandbox.stop.after-namespaces")
	// The pod's containers and pause process have left their cgroups.
	m.releaseCgroupParent(ctx, rec.ID, cgroup.RecordDriver(rec.CgroupDriver), rec.CgroupParent)
	failpoint.Inject("sandbox.stop.after-cgroup-parent")
	rec.Phase = state.PhaseStopped
	if err := m.save(&rec); err != nil {
		return err
	}
	failpoint.Inject("sandbox.stop.after-record")
	p.setRec(rec)
	log.Infof("pod %s/%s stopped", rec.Metadata.Namespace, rec.Metadata.Name)
	return nil
}

// stopPause ends the pause process and the shim. It asks the shim first; a
// shim that is gone (crashed, or the machine rebooted) is replaced by doing
// its job here: kill the pause process if the PID still names it, and
// remove its cgroup.
func (m *Pods) stopPause(ctx context.Context, p *pod) error {
	rec := &p.rec
	m.unwatchShim(p) // the shim exits below, and that is no death
	conn := p.shim
	if conn == nil {
		conn, _ = m.opts.Shims.Connect(rec.ShimDir)
	}
	if conn != nil {
		err := conn.Delete(ctx, rec.ID)
		if err == nil {
			failpoint.Inject("sandbox.stop.after-pause-delete")
			err = conn.Shutdown(ctx)
		}
		conn.Close()
		p.shim = nil
		if err == nil {
			return m.removePauseRootfs(rec)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stop pause process of pod %s: %w", rec.ID, err)
		}
		m.opts.Log.WithField("pod", rec.ID).WithError(err).Warn("shim failed to stop the pause process; killing it directly")
	}
	if err := procfs.Kill(rec.PausePID, rec.PauseStartTime); err != nil {
		return fmt.Errorf("stop pod %s: %w", rec.ID, err)
	}
	if err := shimclient.KillServing(rec.ShimDir); err != nil {
		return fmt.Errorf("stop pod %s: %w", rec.ID, err)
	}
	if err := m.removeCgroup(ctx, rec.CgroupsPath); err != nil {
		return fmt.Errorf("stop pod %s: %w", rec.ID, err)
	}
	return m.removePauseRootfs(rec)
}

// removePauseRootfs removes the rootfs a pause image gave the pod.
func (m *Pods) removePauseRootfs(rec *state.Sandbox) error {
	if !rec.PauseFromImage {
		return nil
	}
	if err := m.opts.Images.RemoveRootfs(rec.ID); err != nil {
		return fmt.Errorf("stop pod %s: %w", rec.ID, err)
	}
	return nil
}

// Remove stops the pod if needed, then deletes its files and record and
// releases its name. Removing an unknown ID is a success.
func (m *Pods) Remove(ctx context.Context, id string) error {
	p, err := m.lockForTeardown(id)
	if p == nil {
		return err
	}
	defer p.mu.Unlock()
	if err := m.stopLocked(ctx, p); err != nil {
		return err
	}
	rec := p.rec
	if err := m.ctrs.RemoveAll(ctx, m.locked(p)); err != nil {
		return fmt.Errorf("remove pod %s: %w", rec.ID, err)
	}
	failpoint.Inject("sandbox.remove.after-containers")
	// Once more: containers whose shim was gone left their cgroups until
	// now, keeping the parent busy at Stop.
	m.releaseCgroupParent(ctx, rec.ID, cgroup.RecordDriver(rec.CgroupDriver), rec.CgroupParent)
	if err := m.removePodFiles(&rec); err != nil {
		return fmt.Errorf("remove pod %s: %w", rec.ID, err)
	}
	m.pods.Delete(rec.ID)
	m.release(rec.Metadata, rec.ID)
	m.opts.Log.WithField("pod", rec.ID).Infof("pod %s/%s removed", rec.Metadata.Namespace, rec.Metadata.Name)
	return nil
}

// removePodFiles deletes a stopped pod's run directory, then its files,
// then its record, then the directory that held them: a crash before the
// record goes leaves a stopped pod the next RemovePodSandbox finishes, one
// after it a directory without a record that start-up removes.
func (m *Pods) removePodFiles(rec *state.Sandbox) error {
	if err := os.RemoveAll(rec.ShimDir); err != nil {
		return err
	}
	failpoint.Inject("sandbox.remove.after-run-dir")
	dir := filepath.Join(podsDir(m.opts.RootDir), rec.ID)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(m.recordPath(rec.ID)) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	failpoint.Inject("sandbox.remove.after-files")
	if err := os.Remove(m.recordPath(rec.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	failpoint.Inject("sandbox.remove.after-record")
	return os.RemoveAll(dir)
}
