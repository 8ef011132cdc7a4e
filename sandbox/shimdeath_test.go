package sandbox

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/shimclient"
	"github.com/crib-runtime/crib/sandbox/store"
)

func TestShimDiedState(t *testing.T) {
	now := time.Unix(1700000000, 0)
	started := now.Add(-time.Minute)
	const msg = "why; the container's exit code was lost with it, and cribd killed what was left of the container"
	tests := []struct {
		name    string
		last    shimapi.State
		changed bool
		want    shimapi.State
	}{
		{
			name: "exit recorded by the shim stays",
			last: shimapi.State{ID: "a", Status: shimapi.StatusStopped, ExitCode: 3, FinishedAt: started},
			want: shimapi.State{ID: "a", Status: shimapi.StatusStopped, ExitCode: 3, FinishedAt: started},
		},
		{
			name:    "running",
			last:    shimapi.State{ID: "a", Status: shimapi.StatusRunning, Pid: 42, StartedAt: started},
			changed: true,
			want: shimapi.State{ID: "a", Status: shimapi.StatusStopped, Pid: 42, StartedAt: started, FinishedAt: now,
				ExitCode: 255, Reason: ShimDiedReason, Message: msg},
		},
		{
			name:    "created, never started",
			last:    shimapi.State{ID: "a", Status: shimapi.StatusCreated, Pid: 42},
			changed: true,
			want: shimapi.State{ID: "a", Status: shimapi.StatusStopped, Pid: 42, FinishedAt: now,
				ExitCode: 255, Reason: ShimDiedReason, Message: msg},
		},
		{
			name:    "unknown, an OOM flag seen mid-way dropped",
			last:    shimapi.State{ID: "a", Status: shimapi.StatusUnknown, OOMKilled: true},
			changed: true,
			want: shimapi.State{ID: "a", Status: shimapi.StatusStopped, FinishedAt: now,
				ExitCode: 255, Reason: ShimDiedReason, Message: msg},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := shimDiedState(tc.last, "why", now)
			if changed != tc.changed || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, %v; want %+v, %v", got, changed, tc.want, tc.changed)
			}
		})
	}
}

// fakeShim is a shim connection that only records Close and answers every
// call as if the shim were gone.
type fakeShim struct {
	shimclient.Conn
	closed bool
}

func (f *fakeShim) Close() error { f.closed = true; return nil }

// shimDeathManager is a Manager over temp dirs with one ready pod and its
// containers, whose shim states are given (a container with an empty
// status has no state file).
func shimDeathManager(t *testing.T, statuses map[string]shimapi.Status) (*Manager, *pod) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	m := &Manager{
		opts:       Options{RootDir: t.TempDir(), RunDir: t.TempDir(), Log: log}.withDefaults(),
		pods:       newPodIndex(),
		names:      store.NewRegistrar(),
		containers: newContainerIndex(),
		ctrNames:   store.NewRegistrar(),
		hub:        events.NewHub(log),
		watcher:    w,
	}
	id := "p0d"
	rec := state.Sandbox{ID: id, Phase: state.PhaseReady, ShimDir: filepath.Join(podsDir(m.opts.RunDir), id)}
	for _, d := range []string{rec.ShimDir, m.containerDir(id)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.save(&rec); err != nil {
		t.Fatal(err)
	}
	p := newPod(rec)
	m.pods.Add(id, p)
	for cid, st := range statuses {
		c := state.Container{ID: cid, PodID: id, Name: cid}
		if err := m.saveContainer(&c); err != nil {
			t.Fatal(err)
		}
		if st != "" {
			if err := os.MkdirAll(filepath.Dir(shimStatePath(rec.ShimDir, cid)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := state.WriteJSON(shimStatePath(rec.ShimDir, cid), &shimapi.State{ID: cid, Status: st, ExitCode: 7}); err != nil {
				t.Fatal(err)
			}
		}
		m.containers.Add(cid, newCtr(c))
	}
	return m, p
}

// TestShimDied: the pod's record says so and it reads NOTREADY, containers
// that had not exited are saved EXITED 255 ShimDied (on disk too), one the
// shim saw exit keeps its code, calls needing the shim fail with
// FailedPrecondition, and events go out for the changed containers and the
// pod; doing it again (as cribd's start does after a crash) changes nothing.
func TestShimDied(t *testing.T) {
	m, p := shimDeathManager(t, map[string]shimapi.Status{
		"running": shimapi.StatusRunning, "created": shimapi.StatusCreated,
		"exited": shimapi.StatusStopped, "nostate": "",
	})
	conn := &fakeShim{}
	p.shim = conn
	events, cancel := m.SubscribeEvents()
	defer cancel()

	p.mu.Lock()
	m.shimDied(context.Background(), p, "test")
	p.mu.Unlock()

	if m.view(p).Ready || p.rec.ShimDied == nil {
		t.Errorf("pod ready=%v shimDied=%v after its shim died", m.view(p).Ready, p.rec.ShimDied)
	}
	var onDisk state.Sandbox
	if err := state.ReadJSON(m.recordPath(p.rec.ID), &onDisk); err != nil || onDisk.ShimDied == nil {
		t.Errorf("pod record on disk: %+v, %v", onDisk.ShimDied, err)
	}
	if !conn.closed || p.shim != nil {
		t.Errorf("shim connection closed=%v, still held=%v", conn.closed, p.shim != nil)
	}
	if _, err := m.shimFor(p); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("shimFor: %v, want FailedPrecondition", err)
	}
	for id, want := range map[string]int{"running": 255, "created": 255, "nostate": 255, "exited": 7} {
		v, err := m.Container(id)
		if err != nil {
			t.Fatal(err)
		}
		wantReason := ShimDiedReason
		if want == 7 {
			wantReason = ""
		}
		if v.Shim.Status != shimapi.StatusStopped || v.Shim.ExitCode != want || v.Shim.Reason != wantReason {
			t.Errorf("container %s: %s %d %q, want stopped %d %q", id, v.Shim.Status, v.Shim.ExitCode, v.Shim.Reason, want, wantReason)
		}
		var rec state.Container
		if err := state.ReadJSON(filepath.Join(m.containerDir("p0d"), id+".json"), &rec); err != nil {
			t.Fatal(err)
		}
		if want == 255 && (rec.LastState == nil || rec.LastState.Reason != ShimDiedReason) {
			t.Errorf("container %s record on disk: last state %+v", id, rec.LastState)
		}
	}
	got := map[string]EventType{}
	for len(events) > 0 {
		ev := <-events
		got[ev.ContainerID] = ev.Type
	}
	want := map[string]EventType{"running": EventStopped, "created": EventStopped, "nostate": EventStopped, "p0d": EventStopped}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}

	// Again, as at cribd's start: nothing changes, no container event.
	first := *p.rec.ShimDied
	p.mu.Lock()
	m.shimDied(context.Background(), p, "again")
	p.mu.Unlock()
	if !p.rec.ShimDied.Equal(first) {
		t.Errorf("second shimDied moved the time of death")
	}
	for len(events) > 0 {
		if ev := <-events; ev.ContainerID != "p0d" {
			t.Errorf("second shimDied published %+v", ev)
		}
	}
}

// startFakeShim starts a process whose command line names dir, as a shim's
// does, and writes its PID file.
func startFakeShim(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	// cat reads its stdin (a pipe no one writes) before the file dir: it
	// waits, and its command line names dir.
	cmd := exec.Command("cat", "-", dir)
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.WriteFile(filepath.Join(dir, shimapi.PIDName), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestWatchShim: the death of a watched shim makes the pod NOTREADY within
// moments; an unwatched one (cribd stopping it) does not.
func TestWatchShim(t *testing.T) {
	t.Run("death noticed", func(t *testing.T) {
		m, p := shimDeathManager(t, map[string]shimapi.Status{"running": shimapi.StatusRunning})
		cmd := startFakeShim(t, p.rec.ShimDir)
		p.mu.Lock()
		watching := m.watchShim(p)
		p.mu.Unlock()
		if !watching {
			t.Fatal("watchShim found no shim")
		}
		p.mu.Lock()
		early := p.rec.ShimDied != nil
		p.mu.Unlock()
		if early {
			t.Fatal("shim taken for dead while it runs")
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			p.mu.Lock()
			died := p.rec.ShimDied != nil
			p.mu.Unlock()
			if died {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("shim death not noticed within 2s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if v, _ := m.Container("running"); v.Shim.Reason != ShimDiedReason {
			t.Errorf("container after shim death: %+v", v.Shim)
		}
	})
	t.Run("unwatched before exit", func(t *testing.T) {
		m, p := shimDeathManager(t, nil)
		cmd := startFakeShim(t, p.rec.ShimDir)
		p.mu.Lock()
		m.watchShim(p)
		m.unwatchShim(p)
		p.mu.Unlock()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		time.Sleep(100 * time.Millisecond) // nothing to poll for: it must not happen
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.rec.ShimDied != nil {
			t.Error("an unwatched shim's exit was taken for a death")
		}
	})
}

// TestRecoverShims: at start, a ready pod whose run dir holds no live shim
// is handled as a shim death; one whose run dir is gone (a reboot) and one
// with a live shim are not.
func TestRecoverShims(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, p *pod)
		wantDied  bool
		wantWatch bool
	}{
		{"shim gone", func(*testing.T, *pod) {}, true, false},
		{"pid file of another process", func(t *testing.T, p *pod) {
			_ = os.WriteFile(filepath.Join(p.rec.ShimDir, shimapi.PIDName), []byte(strconv.Itoa(os.Getpid())), 0o644)
		}, true, false},
		{"run dir gone with a reboot", func(t *testing.T, p *pod) { _ = os.RemoveAll(p.rec.ShimDir) }, false, false},
		{"shim alive", func(t *testing.T, p *pod) { startFakeShim(t, p.rec.ShimDir) }, false, true},
		{"stopped pod", func(t *testing.T, p *pod) { p.rec.Phase = state.PhaseStopped }, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, p := shimDeathManager(t, nil)
			tc.setup(t, p)
			m.recoverShims()
			p.mu.Lock()
			defer p.mu.Unlock()
			if died := p.rec.ShimDied != nil; died != tc.wantDied {
				t.Errorf("shim died: %v, want %v", died, tc.wantDied)
			}
			if watching := p.watch != nil; watching != tc.wantWatch {
				t.Errorf("watching: %v, want %v", watching, tc.wantWatch)
			}
			m.unwatchShim(p)
		})
	}
}
