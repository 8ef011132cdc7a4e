package pod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	evs "github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/shimclient"
	"github.com/crib-runtime/crib/sandbox/store"
)

// fakeShim is a shim connection that only records Close and answers every
// call as if the shim were gone.
type fakeShim struct {
	shimclient.Conn
	closed bool
}

func (f *fakeShim) Close() error { f.closed = true; return nil }

// shimDeathManager is Pods over temp dirs with one ready pod, whose
// containers' side is a fake.
func shimDeathManager(t *testing.T) (*Pods, *pod, *fakeContainers) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctrs := &fakeContainers{}
	m := &Pods{
		opts:  Config{RootDir: t.TempDir(), RunDir: t.TempDir(), Pinner: HostPinner(), Log: log},
		ctrs:  ctrs,
		hub:   evs.NewHub(log),
		pods:  newPodIndex(),
		names: store.NewRegistrar(),
	}
	id := "p0d"
	rec := state.Sandbox{ID: id, Phase: state.PhaseReady, ShimDir: filepath.Join(podsDir(m.opts.RunDir), id)}
	for _, d := range []string{rec.ShimDir, filepath.Dir(m.recordPath(id))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.save(&rec); err != nil {
		t.Fatal(err)
	}
	p := newPod(rec)
	m.pods.Add(id, p)
	return m, p, ctrs
}

// TestShimDied: the pod's record says so and it reads NOTREADY, its
// containers' side is told, calls needing the shim fail with
// FailedPrecondition, and events go out for the containers whose state
// changed and the pod; doing it again (as cribd's start does after a
// crash) changes nothing. (sandbox/container's TestShimDied checks the
// containers' side.)
func TestShimDied(t *testing.T) {
	m, p, ctrs := shimDeathManager(t)
	ctrs.stopped = []string{"running", "created", "nostate"}
	conn := &fakeShim{}
	p.shim = conn
	events, cancel := m.hub.Subscribe()
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
	if !ctrs.diedFor("p0d") {
		t.Errorf("the containers' side was not told of the death")
	}
	got := map[string]evs.Type{}
	for len(events) > 0 {
		ev := <-events
		got[ev.ContainerID] = ev.Type
	}
	want := map[string]evs.Type{"running": evs.Stopped, "created": evs.Stopped, "nostate": evs.Stopped, "p0d": evs.Stopped}
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
	// Start returns once the child is forked, maybe before it execs cat:
	// until then its command line is the test binary's, and no shim
	// lookup would take it for dir's.
	cmdline := fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err := os.ReadFile(cmdline); err == nil && bytes.Contains(b, []byte(dir)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never named %s", cmdline, dir)
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(dir, shimapi.PIDName), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestWatchShim: the death of a watched shim makes the pod NOTREADY within
// moments; an unwatched one (cribd stopping it) does not.
func TestWatchShim(t *testing.T) {
	t.Run("death noticed", func(t *testing.T) {
		m, p, ctrs := shimDeathManager(t)
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
		if !ctrs.diedFor("p0d") {
			t.Errorf("the containers' side was not told of the death")
		}
	})
	t.Run("unwatched before exit", func(t *testing.T) {
		m, p, _ := shimDeathManager(t)
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
			m, p, _ := shimDeathManager(t)
			tc.setup(t, p)
			m.RecoverShims()
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
