package pod

import (
	"context"

	"github.com/crib-runtime/crib/internal/cgroup"
)

// removeCgroup removes the cgroup of a pod's pause process or of a
// container whose shim is gone, given its OCI cgroupsPath: under systemd
// its scope is stopped first (which kills what is left in it); then its
// directory goes in every hierarchy, waiting while its last processes exit.
func (m *Pods) removeCgroup(ctx context.Context, cgroupsPath string) error {
	return cgroup.Remove(ctx, m.opts.Units, m.hierarchies, cgroupsPath)
}

// releaseCgroupParent stops counting the pod as a user of its cgroup
// parent and removes what crib made there that no pod needs. A failure is
// logged, not returned: the parent is retried at the next pod's release
// under it and at cribd's start, and must not keep kubelet's Stop from
// finishing.
func (m *Pods) releaseCgroupParent(ctx context.Context, id string, driver cgroup.Driver, parent string) {
	if err := m.parents.Release(ctx, id, driver, parent); err != nil {
		m.opts.Log.WithField("pod", id).WithError(err).Warn("removing the pod's cgroup parent")
	}
}
