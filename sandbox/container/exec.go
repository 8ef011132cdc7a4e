package container

import (
	"context"
	"fmt"
	"maps"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// ExecResult is what ExecSync returns.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// runningContainer finds a running container and its pod's shim.
func (m *Manager) runningContainer(id string) (*ctr, shimclient.Conn, error) {
	c, err := m.lookupContainer(id)
	if err != nil {
		return nil, nil, err
	}
	rec := c.published()
	if m.viewOf(rec).Shim.Status != shimapi.StatusRunning {
		return nil, nil, errdefs.FailedPrecondition("container %s is not running", rec.ID)
	}
	p, err := m.pods.Lock(rec.PodID)
	if err != nil {
		return nil, nil, fmt.Errorf("container %s: %w", rec.ID, err)
	}
	defer p.Unlock()
	conn, err := p.Shim()
	if err != nil {
		return nil, nil, err
	}
	return c, conn, nil
}

// ExecSync runs cmd in a running container as its process runs (user,
// environment, namespaces, cgroup) and returns its output and exit code.
// A positive timeout kills the process when it passes, and the call then
// fails with context.DeadlineExceeded.
func (m *Manager) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*ExecResult, error) {
	if len(cmd) == 0 {
		return nil, errdefs.InvalidArgument("cmd is empty")
	}
	c, conn, err := m.runningContainer(id)
	if err != nil {
		return nil, err
	}
	resp, err := conn.Exec(ctx, &shimapi.ExecRequest{ID: c.rec.ID, Args: cmd, Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.rec.ID, err)
	}
	if resp.TimedOut {
		return nil, fmt.Errorf("exec in container %s: command %q timed out after %s: %w", c.rec.ID, cmd, timeout, context.DeadlineExceeded)
	}
	return &ExecResult{Stdout: resp.Stdout, Stderr: resp.Stderr, ExitCode: resp.ExitCode}, nil
}

// ReopenContainerLog has the shim reopen a running container's log file
// after kubelet renamed it.
func (m *Manager) ReopenContainerLog(ctx context.Context, id string) error {
	c, conn, err := m.runningContainer(id)
	if err != nil {
		return err
	}
	if c.rec.LogPath == "" {
		return errdefs.FailedPrecondition("container %s has no log path", c.rec.ID)
	}
	return conn.ReopenLog(ctx, c.rec.ID)
}

// ResourceUpdate is a container's new resources as the caller's API
// states them; the server makes one from a CRI request.
type ResourceUpdate interface {
	// Resources translates the update for a node with (hugetlb) or
	// without a hugetlb cgroup controller, refusing what it cannot apply.
	Resources(hugetlb bool) (*specs.LinuxResources, error)
	// Refused explains the shim's failure to apply the update in the
	// request's terms; other errors it returns unchanged.
	Refused(err error) error
}

// UpdateContainerResources applies new CPU and memory settings to a
// running container.
func (m *Manager) UpdateContainerResources(ctx context.Context, id string, u ResourceUpdate) error {
	c, conn, err := m.runningContainer(id)
	if err != nil {
		return err
	}
	res, err := u.Resources(m.hugetlb)
	if err != nil {
		return err
	}
	if err := conn.Update(ctx, c.rec.ID, res); err != nil {
		return u.Refused(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.rec
	rec.Resources = mergeResources(rec.Resources, res)
	if err := m.saveContainer(&rec); err != nil {
		return err
	}
	c.setRec(rec)
	return nil
}

// appliedResources is what ContainerStatus reports of a spec's CPU and
// memory settings and its process's oom_score_adj.
func appliedResources(spec *specs.Spec) *state.Resources {
	var adj int
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil {
		adj = *spec.Process.OOMScoreAdj
	}
	if spec.Linux == nil {
		return &state.Resources{OOMScoreAdj: adj}
	}
	out := mergeResources(nil, spec.Linux.Resources)
	out.OOMScoreAdj = adj
	return out
}

// mergeResources returns have with the settings res sets replaced, as an
// update applies them (an unset field keeps its value).
func mergeResources(have *state.Resources, res *specs.LinuxResources) *state.Resources {
	out := state.Resources{}
	if have != nil {
		out = *have
	}
	if res == nil {
		return &out
	}
	if c := res.CPU; c != nil {
		if c.Period != nil && *c.Period != 0 {
			out.CPUPeriod = *c.Period
		}
		if c.Quota != nil && *c.Quota != 0 {
			out.CPUQuota = *c.Quota
		}
		if c.Shares != nil && *c.Shares != 0 {
			out.CPUShares = *c.Shares
		}
		if c.Cpus != "" {
			out.CpusetCpus = c.Cpus
		}
		if c.Mems != "" {
			out.CpusetMems = c.Mems
		}
	}
	if mem := res.Memory; mem != nil {
		if mem.Limit != nil && *mem.Limit != 0 {
			out.MemoryLimit = *mem.Limit
		}
		if mem.Swap != nil && *mem.Swap != 0 {
			out.MemorySwapLimit = *mem.Swap
		}
	}
	if len(res.Unified) > 0 {
		out.Unified = maps.Clone(res.Unified)
	}
	return &out
}
