package container

// Start-up recovery of containers: their records are loaded with their
// pods' (Recover), then those a crash left marked creating or removing
// are finished (FinishPending). sandbox/reconcile.go tells the whole
// start-up.

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/cleanup"
)

// Recover loads the container records of pod id.
func (m *Manager) Recover(id string) {
	entries, err := os.ReadDir(m.containerDir(id))
	if err != nil {
		return // no containers
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var rec state.Container
		if err := state.ReadJSON(filepath.Join(m.containerDir(id), e.Name()), &rec); err != nil {
			m.opts.Log.WithError(err).Errorf("recover: skipping container record %s", e.Name())
			continue
		}
		m.containers.Add(rec.ID, newCtr(rec))
		if err := m.ctrNames.Reserve(containerKey(&rec), rec.ID); err != nil {
			m.opts.Log.WithError(err).Warnf("recover: container %s", rec.ID)
		}
	}
}

// FinishPending undoes the container records a crash left marked
// creating and finishes those marked removing. A failure keeps the record,
// marked removing, in the container list: RemoveContainer (which kubelet
// calls for a container of its pod that it does not know) or the next
// start finishes it.
func (m *Manager) FinishPending() {
	m.removeCheckpointLeftovers()
	var pending []*ctr
	for _, c := range m.containers.List() {
		if c.rec.Creating || c.rec.Removing {
			pending = append(pending, c)
		}
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].rec.ID < pending[j].rec.ID })
	ctx, cancel := context.WithTimeout(context.Background(), cleanup.Timeout)
	defer cancel()
	for _, c := range pending {
		rec := c.rec
		log := m.opts.Log.WithField("pod", rec.PodID).WithField("container", rec.ID)
		p, lerr := m.pods.Lock(rec.PodID)
		if lerr != nil {
			p = nil
		}
		err := m.removeContainer(ctx, p, c)
		if p != nil {
			p.Unlock()
		}
		switch {
		case err != nil:
			log.WithError(err).Warnf("recover: container %s: a crash cut its create or removal short, and finishing it failed; RemoveContainer or the next start retries", rec.Name)
		case rec.Creating:
			log.Infof("recover: undid the create of container %s, cut short by a crash (its writable layer, shim container and record are gone)", rec.Name)
		default:
			log.Infof("recover: finished removing container %s, cut short by a crash", rec.Name)
		}
	}
}

// containerCgroupsPath is a container's OCI cgroupsPath, from its record
// or, in records that lack it, from its pod's parent.
func containerCgroupsPath(pod state.Sandbox, c *state.Container) string {
	if c.CgroupsPath != "" {
		return c.CgroupsPath
	}
	return cgroup.Path(cgroup.RecordDriver(pod.CgroupDriver), pod.CgroupParent, c.ID)
}
