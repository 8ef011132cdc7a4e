package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/failpoint"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/store"
)

// exitPoll is how often Stop checks whether a signalled container exited.
const exitPoll = 10 * time.Millisecond

// StartContainer starts a created container.
func (m *Manager) StartContainer(ctx context.Context, id string) error {
	c, err := m.lookupContainer(id)
	if err != nil {
		return err
	}
	p, err := m.pods.Lock(c.rec.PodID)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	defer p.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := m.viewOf(c.rec); v.Shim.Status != shimapi.StatusCreated {
		return errdefs.FailedPrecondition("container %s is %s, not created", c.rec.ID, v.Shim.Status)
	}
	conn, err := p.Shim()
	if err != nil {
		return err
	}
	if err := conn.Start(ctx, c.rec.ID); err != nil {
		return fmt.Errorf("start container %s: %w", c.rec.ID, err)
	}
	failpoint.Inject("container.start.after-shim-start")
	m.opts.Log.WithField("pod", c.rec.PodID).WithField("container", c.rec.ID).Infof("started container %s", c.rec.Name)
	m.publish(events.Started, m.viewOf(c.rec))
	return nil
}

// StopContainer sends the container's stop signal, waits up to timeout for
// it to exit, then kills it. A timeout of 0 kills at once. Stopping an
// exited or unknown container succeeds.
func (m *Manager) StopContainer(ctx context.Context, id string, timeout time.Duration) error {
	c, err := m.lookupContainer(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.stopContainerLocked(ctx, c, timeout)
}

func (m *Manager) stopContainerLocked(ctx context.Context, c *ctr, timeout time.Duration) error {
	rec := c.rec
	if !procfs.Alive(rec.Pid, rec.PidStartTime) {
		return nil
	}
	sig := syscall.Signal(rec.StopSignal)
	if timeout > 0 && sig != syscall.SIGKILL {
		if err := unix.Kill(rec.Pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal container %s: %w", rec.ID, err)
		}
		failpoint.Inject("container.stop.after-signal")
		if m.waitExit(ctx, rec, timeout) {
			return nil
		}
		// A caller that gives up before the grace period ends (kubelet's
		// deadline) does not shorten it: the container keeps its time to
		// exit, and the next StopContainer decides again.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stop container %s: gave up waiting for it to exit after signal %d: %w", rec.ID, sig, err)
		}
	}
	if err := procfs.Kill(rec.Pid, rec.PidStartTime); err != nil {
		return fmt.Errorf("kill container %s: %w", rec.ID, err)
	}
	failpoint.Inject("container.stop.after-kill")
	if !m.waitExit(ctx, rec, 10*time.Second) {
		return fmt.Errorf("container %s (pid %d) did not exit after SIGKILL", rec.ID, rec.Pid)
	}
	return nil
}

// waitExit polls until the container's exit is recorded (by its shim, or
// derived when the shim is gone) or timeout passes.
func (m *Manager) waitExit(ctx context.Context, rec state.Container, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(exitPoll)
	defer tick.Stop()
	for m.viewOf(rec).Shim.Status != shimapi.StatusStopped {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

// RemoveContainer kills the container if it runs, deletes it in the shim,
// removes its writable layer and its record. Unknown IDs succeed.
func (m *Manager) RemoveContainer(ctx context.Context, id string) error {
	c, err := m.lookupContainer(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p, err := m.pods.Lock(c.rec.PodID)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if err == nil {
		defer p.Unlock()
	}
	return m.removeContainer(ctx, p, c)
}

// removeContainer does RemoveContainer's work; the caller holds p's
// lock. A nil p is a pod that is gone.
func (m *Manager) removeContainer(ctx context.Context, p Pod, c *ctr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rec.Removing {
		marked := c.rec
		marked.Removing = true
		if err := m.saveContainer(&marked); err != nil {
			return err
		}
		c.setRec(marked)
		failpoint.Inject("container.remove.after-removing-record")
	}
	rec := &c.rec
	if err := m.stopContainerLocked(ctx, c, 0); err != nil {
		return err
	}
	if p != nil {
		if conn, err := p.Shim(); err == nil {
			if err := conn.Delete(ctx, rec.ID); err != nil {
				return fmt.Errorf("remove container %s: %w", rec.ID, err)
			}
		} else {
			if err := m.removeCgroupWithoutShim(ctx, containerCgroupsPath(p.Record(), rec)); err != nil {
				return fmt.Errorf("remove container %s: %w", rec.ID, err)
			}
			pod := p.Record()
			if h, err := m.runtimeOf(&pod); err == nil {
				if err := deleteInRuntime(ctx, h, rec.ID); err != nil {
					return fmt.Errorf("remove container %s: %w", rec.ID, err)
				}
			}
		}
		failpoint.Inject("container.remove.after-shim-delete")
	}
	if err := m.opts.Images.RemoveRootfs(rec.ID); err != nil {
		return err
	}
	failpoint.Inject("container.remove.after-rootfs")
	if err := m.removeImageMounts(rec); err != nil {
		return err
	}
	if err := os.RemoveAll(store.VolumeDir(m.opts.RootDir, rec.PodID, rec.ID)); err != nil {
		return fmt.Errorf("remove container %s volumes: %w", rec.ID, err)
	}
	if err := os.Remove(m.specPath(rec.PodID, rec.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove container %s OCI spec: %w", rec.ID, err)
	}
	// The record goes last: until then a crash leaves it marked removing,
	// and the next RemoveContainer, or cribd's start, redoes every step
	// above, each of which takes "already gone" as done.
	if err := m.removeContainerRecord(rec.PodID, rec.ID); err != nil {
		return err
	}
	failpoint.Inject("container.remove.after-record")
	m.forgetStats(rec.ID)
	m.publish(events.Deleted, ContainerView{Container: *rec})
	m.containers.Delete(rec.ID)
	m.releaseContainer(containerKey(rec), rec.ID)
	m.opts.Log.WithField("pod", rec.PodID).WithField("container", rec.ID).Infof("removed container %s", rec.Name)
	return nil
}

// StopAll kills the running containers of pod p and saves each one's
// last state into its record: the shim, and the state files it keeps, end
// with the pod. The caller holds p's lock.
func (m *Manager) StopAll(ctx context.Context, p Pod) error {
	for _, c := range m.podContainers(p.Record().ID) {
		c.mu.Lock()
		err := m.stopContainerLocked(ctx, c, 0)
		if err == nil {
			v := m.viewOf(c.rec)
			if c.rec.LastState == nil || v.Shim.Status != c.rec.LastState.Status {
				last := v.Shim
				rec := c.rec
				rec.LastState = &last
				if err = m.saveContainer(&rec); err == nil {
					c.setRec(rec)
				}
			}
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// RemoveAll removes the containers of pod p, as RemoveContainer does. The
// caller holds p's lock.
func (m *Manager) RemoveAll(ctx context.Context, p Pod) error {
	for _, c := range m.podContainers(p.Record().ID) {
		if err := m.removeContainer(ctx, p, c); err != nil {
			return err
		}
	}
	return nil
}

// podContainers lists the containers of pod id.
func (m *Manager) podContainers(id string) []*ctr {
	var out []*ctr
	for _, c := range m.containers.List() {
		if c.rec.PodID == id {
			out = append(out, c)
		}
	}
	return out
}

// stopSignal is the signal StopContainer sends first: the request's (a
// number, 0 for none), else the image's STOPSIGNAL, else SIGTERM.
func stopSignal(req int, img imgspec.ImageConfig) int {
	if req > 0 {
		return req
	}
	if s := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(img.StopSignal), "SIG")); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
			return n
		}
		if n, ok := signalNumbers[s]; ok {
			return n
		}
	}
	return int(syscall.SIGTERM)
}

// signalNumbers maps signal names without "SIG" to numbers.
var signalNumbers = func() map[string]int {
	out := map[string]int{}
	for n := 1; n < 32; n++ {
		name := unix.SignalName(syscall.Signal(n))
		if name != "" {
			out[strings.TrimPrefix(name, "SIG")] = n
		}
	}
	return out
}()
