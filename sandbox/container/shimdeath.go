package container

import (
	"context"
	"time"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/procfs"
)

// When a pod's shim dies, its containers' exits die with it: sandbox/pod
// (shimdeath.go) tells why cribd then reports them EXITED 255 and kills
// what is left; this is the containers' part of it.

// ShimDiedReason is the reason ContainerStatus gives a container whose
// pod's shim died before recording its exit.
const ShimDiedReason = "ShimDied"

// shimDiedExitCode is the exit code reported for such a container: its
// real one died with the shim.
const shimDiedExitCode = 255

// ShimDied records the final state of each container of pod p, whose
// shim died, as EXITED 255 ShimDied (unless the shim recorded its exit),
// then kills what is left of each: its process, then its cgroup. It
// returns the IDs of the containers whose state it changed: the pod
// publishes their exits once its pause process is killed too. The caller
// holds p's lock.
func (m *Manager) ShimDied(ctx context.Context, p Pod, why string, now time.Time) []string {
	prec := p.Record()
	log := m.opts.Log.WithField("pod", prec.ID)
	type victim struct {
		pid         int
		start       uint64
		cgroupsPath string
	}
	var victims []victim
	var changed []string
	for _, c := range m.podContainers(prec.ID) {
		c.mu.Lock()
		// What the shim wrote, not what viewOf derives: a container
		// that died with it (of SIGPIPE at its next write) reads exited
		// already, but no one recorded that exit.
		if last, ok := shimDiedState(m.recordedState(c.rec), why, now); ok {
			rec := c.rec
			rec.LastState = &last
			if err := m.saveContainer(&rec); err != nil {
				log.WithField("container", c.rec.ID).WithError(err).Error("saving the container's exit after its shim died")
			}
			// In memory even when the save failed: the shim is dead, and
			// its containers read exited until cribd's next start finds
			// it the same way.
			c.setRec(rec)
			changed = append(changed, c.rec.ID)
		}
		victims = append(victims, victim{c.rec.Pid, c.rec.PidStartTime, containerCgroupsPath(prec, &c.rec)})
		c.mu.Unlock()
	}
	for _, v := range victims {
		if err := procfs.Kill(v.pid, v.start); err != nil {
			log.WithError(err).Warn("killing a process of the pod")
		}
		if err := cgroup.Kill(ctx, m.hierarchies, v.cgroupsPath); err != nil {
			log.WithError(err).Warn("killing the processes left in a cgroup of the pod")
		}
	}
	return changed
}

// shimDiedState is the final state of a container whose shim died, given
// the last state the shim recorded: unchanged (false) if the shim had
// recorded its exit, else EXITED with code 255 and the reason ShimDied.
func shimDiedState(last shimapi.State, why string, now time.Time) (shimapi.State, bool) {
	if last.Status == shimapi.StatusStopped {
		return last, false
	}
	last.Status = shimapi.StatusStopped
	last.ExitCode = shimDiedExitCode
	last.OOMKilled = false
	last.FinishedAt = now
	last.Reason = ShimDiedReason
	last.Message = why + "; the container's exit code was lost with it, and cribd killed what was left of the container"
	return last, true
}
