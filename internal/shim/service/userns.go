package service

import (
	"maps"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/libct"
)

// convert translates a container's spec for libcontainer. A container that
// joins its pod's user namespace by the pinned path is converted through a
// running container of this shim in that namespace when there is one (see
// libct.ConvertThroughProcess); otherwise specconv forks into the namespace.
func (s *Shim) convert(id string, spec *specs.Spec) (*libct.Spec, error) {
	pin := libct.UserNSPath(spec)
	if pin == "" {
		return libct.Convert(id, spec)
	}
	if lc := libct.ConvertThroughProcess(id, spec, pin, s.runningPIDs()); lc != nil {
		return lc, nil
	}
	// specconv forks children into the namespace and waits for them:
	// keep the reaper off.
	s.reaper.LockSpawn()
	defer s.reaper.UnlockSpawn()
	return libct.Convert(id, spec)
}

// runningPIDs are the init PIDs of this shim's running containers.
func (s *Shim) runningPIDs() []int {
	s.mu.Lock()
	cs := slices.Collect(maps.Values(s.containers))
	s.mu.Unlock()
	var pids []int
	for _, c := range cs {
		if st := c.snapshot(); st.Status == shimapi.StatusRunning && st.Pid > 0 {
			pids = append(pids, st.Pid)
		}
	}
	return pids
}
