package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/moby/sys/mountinfo"

	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// Start-up reconciliation of pods (sandbox/reconcile.go runs it all).

// SweepRunDirs removes the pod run directories no pod record names: a
// cribd killed in RunPodSandbox before its record was written, or in
// RemovePodSandbox after the record went, left them.
func (m *Pods) SweepRunDirs(owned map[string]bool) {
	if owned == nil {
		return
	}
	entries, err := os.ReadDir(podsDir(m.opts.RunDir))
	if err != nil {
		m.opts.Log.WithError(err).Warn("recover: listing pod run directories")
		return
	}
	for _, e := range entries {
		if !e.IsDir() || owned[e.Name()] {
			continue
		}
		dir := filepath.Join(podsDir(m.opts.RunDir), e.Name())
		if err := removeRunDir(dir); err != nil {
			m.opts.Log.WithError(err).Warnf("recover: removing pod run directory %s, which no record names", dir)
			continue
		}
		m.opts.Log.WithField("pod", e.Name()).Infof("recover: removed pod run directory %s, which no record names", dir)
	}
}

// removeRunDir removes a pod run directory: a shim still running there is
// killed, and every mount beneath it (a /dev/shm tmpfs, namespace pins)
// detached, deepest first, so that RemoveAll neither fails on a pin nor
// empties a mount.
func removeRunDir(dir string) error {
	if err := shimclient.KillServing(dir); err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", dir, err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, mnt := range mounts {
		if err := unmount(mnt.Mountpoint); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
