package sandbox

// Start-up reconciliation. cribd can be killed between any two steps of an
// RPC; each RPC is ordered so that what such a crash leaves is either
// finished by the next call on the same object, or recognised here, at
// start, before cribd serves, and finished or undone (docs/architecture.md,
// "Crash safety"). What this file runs, after the pods' Recover has loaded
// the records (the containers' with their pods'):
//
//   - container records marked creating (CreateContainer cut short) are
//     undone, those marked removing (RemoveContainer cut short) finished
//     (sandbox/container, FinishPending);
//   - temporary files of atomic writes cut short (records, cgroups.json,
//     the pause binary) are deleted;
//   - pod run directories (<run_dir>/pods/<id>) no record names are
//     removed, mounts beneath them first (sandbox/pod, SweepRunDirs);
//   - writable layers in the image store that crib made (its naming says
//     so) and no record owns are unmounted and deleted.
//
// Each action is logged at Info; a failure is logged and left for the next
// start (or, for a record, the next call on it).

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/crib-runtime/crib/sandbox/store"
)

// reconcile runs the start-up reconciliation; New calls it after the
// pods' Recover.
func (m *Manager) reconcile() {
	m.Manager.FinishPending()
	// Atomic writes outside the pod records: cgroups.json, the pause binary.
	m.removeRecordTemps(m.opts.RunDir)
	m.removeRecordTemps(m.PauseRootfs())
	owned := m.recordIDs()
	m.SweepRunDirs(owned)
	m.sweepRootfses(owned)
}

// recordIDs returns the IDs of every pod and container record on disk,
// readable or not (a record cribd cannot decode still owns what it names;
// it is left for an operator), and deletes the temporary files of record
// writes a crash cut short (state.WriteFile's ".<name>.tmp-*").
func (m *Manager) recordIDs() map[string]bool {
	owned := map[string]bool{}
	pods, err := os.ReadDir(store.PodsDir(m.opts.RootDir))
	if err != nil {
		m.opts.Log.WithError(err).Warn("recover: listing pod records")
		return nil // nil: the sweeps remove nothing
	}
	for _, pe := range pods {
		if !pe.IsDir() {
			continue
		}
		owned[pe.Name()] = true
		m.removeRecordTemps(filepath.Join(store.PodsDir(m.opts.RootDir), pe.Name()))
		dir := store.ContainerDir(m.opts.RootDir, pe.Name())
		m.removeRecordTemps(dir)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(id, ".") {
				owned[id] = true
			}
		}
	}
	return owned
}

// removeRecordTemps deletes dir's leftovers of atomic writes
// (state.WriteFile's temp files).
func (m *Manager) removeRecordTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, ".") || !strings.Contains(name, ".tmp-") {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.opts.Log.WithError(err).Warnf("recover: removing %s", path)
			continue
		}
		m.opts.Log.Infof("recover: removed %s, a write cut short by a crash", path)
	}
}

// crib names the writable layers it makes in the image store after what
// they are for (the names are in the store, for `crictl rmi` errors and
// for this sweep):
//
//	<container name>_<pod ID>_<attempt>   an app container's, keyed by its ID
//	pause_<pod ID>                        a pod's pause image's, keyed by the pod ID
//	imagevol-<container ID>-<index>       an image volume's read-only mount
//	                                      (state.ImageMountName), owned by the
//	                                      container's record
//
// A store container with another name is not crib's (nothing else should
// make one in crib's store, but nothing of someone else's is deleted).
var (
	appRootfsName   = regexp.MustCompile(`^.+_[0-9a-f]{64}_[0-9]+$`)
	pauseRootfsName = regexp.MustCompile(`^pause_[0-9a-f]{64}$`)
	imageMountName  = regexp.MustCompile(`^imagevol-([0-9a-f]{64})-[0-9]+$`)
	fullID          = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// cribRootfs reports whether a writable layer with these store names and
// ID is one crib made. A layer with no names is a bind left under the
// image service's user-namespace directory, crib's own, named by ID.
func cribRootfs(id string, names []string) bool {
	if !fullID.MatchString(id) {
		return false
	}
	if len(names) == 0 {
		return true
	}
	for _, n := range names {
		if appRootfsName.MatchString(n) || pauseRootfsName.MatchString(n) || imageMountName.MatchString(n) {
			return true
		}
	}
	return false
}

// imageMountOwner is the ID of the container whose image mount has these
// store names, or "".
func imageMountOwner(names []string) string {
	for _, n := range names {
		if m := imageMountName.FindStringSubmatch(n); m != nil {
			return m[1]
		}
	}
	return ""
}

// sweepRootfses unmounts and deletes the writable layers crib made that
// no record owns: a cribd killed in CreateContainer by a build older than
// the creating mark, or one whose records were removed by hand, left them.
func (m *Manager) sweepRootfses(owned map[string]bool) {
	if owned == nil {
		return
	}
	list, err := m.opts.Images.Rootfses()
	if err != nil {
		m.opts.Log.WithError(err).Warn("recover: listing writable layers")
		return
	}
	for _, r := range list {
		if owned[r.ID] || owned[imageMountOwner(r.Names)] {
			continue
		}
		if !cribRootfs(r.ID, r.Names) {
			m.opts.Log.WithField("names", r.Names).Infof("recover: store container %s is not crib's; left alone", r.ID)
			continue
		}
		if err := m.opts.Images.RemoveRootfs(r.ID); err != nil {
			m.opts.Log.WithError(err).Warnf("recover: removing writable layer %s %v, which no record owns", r.ID, r.Names)
			continue
		}
		m.opts.Log.WithField("container", r.ID).Infof("recover: removed writable layer %v, which no record owns", r.Names)
	}
}
