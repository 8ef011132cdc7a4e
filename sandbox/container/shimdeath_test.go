package container

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox/events"
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

// shimDeathManager is containers over temp dirs of one ready pod, a fake
// one, whose containers' shim states are given (a container with an
// empty status has no state file).
func shimDeathManager(t *testing.T, statuses map[string]shimapi.Status) (*Manager, *fakePod) {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	root, run := t.TempDir(), t.TempDir()
	id := "p0d"
	p := &fakePod{rec: state.Sandbox{ID: id, Phase: state.PhaseReady, ShimDir: store.PodDir(run, id)}}
	m, err := New(Config{RootDir: root, RunDir: run, Log: log, Hub: events.NewHub(log)},
		&fakePods{pods: map[string]*fakePod{id: p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	for _, d := range []string{p.rec.ShimDir, m.containerDir(id)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for cid, st := range statuses {
		c := state.Container{ID: cid, PodID: id, Name: cid}
		if err := m.saveContainer(&c); err != nil {
			t.Fatal(err)
		}
		if st != "" {
			if err := os.MkdirAll(filepath.Dir(shimStatePath(p.rec.ShimDir, cid)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := state.WriteJSON(shimStatePath(p.rec.ShimDir, cid), &shimapi.State{ID: cid, Status: st, ExitCode: 7}); err != nil {
				t.Fatal(err)
			}
		}
		m.containers.Add(cid, newCtr(c))
	}
	return m, p
}

// TestShimDied: containers that had not exited are saved EXITED 255
// ShimDied (on disk too) and returned for their events, one the shim saw
// exit keeps its code; doing it again (as cribd's start does after a
// crash) changes nothing. (sandbox/pod's TestShimDied checks the pod's
// side.)
func TestShimDied(t *testing.T) {
	m, p := shimDeathManager(t, map[string]shimapi.Status{
		"running": shimapi.StatusRunning, "created": shimapi.StatusCreated,
		"exited": shimapi.StatusStopped, "nostate": "",
	})
	now := time.Now()
	stopped := m.ShimDied(context.Background(), p, "test", now)
	sort.Strings(stopped)
	if want := []string{"created", "nostate", "running"}; !reflect.DeepEqual(stopped, want) {
		t.Errorf("containers stopped %v, want %v", stopped, want)
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

	// Again, as at cribd's start: nothing changes.
	if again := m.ShimDied(context.Background(), p, "again", now.Add(time.Second)); len(again) > 0 {
		t.Errorf("second ShimDied stopped %v", again)
	}
	if v, _ := m.Container("running"); !v.Shim.FinishedAt.Equal(now) {
		t.Errorf("second ShimDied moved the time of death: %v", v.Shim.FinishedAt)
	}
}
