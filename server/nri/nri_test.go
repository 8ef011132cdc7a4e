package nri

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/config"
	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
)

// fakeRuntime is one pod with the containers the test puts in it.
type fakeRuntime struct {
	pod     sandbox.View
	ctrs    []sandbox.ContainerView
	mu      sync.Mutex
	updates []string // container IDs updated
}

func (f *fakeRuntime) Get(id string) (sandbox.View, error) {
	if id != f.pod.ID {
		return sandbox.View{}, errdefs.NotFound("pod %s", id)
	}
	return f.pod, nil
}

func (f *fakeRuntime) List(sandbox.Filter) []sandbox.View { return []sandbox.View{f.pod} }

func (f *fakeRuntime) Container(id string) (sandbox.ContainerView, error) {
	for _, c := range f.ctrs {
		if c.ID == id {
			return c, nil
		}
	}
	return sandbox.ContainerView{}, errdefs.NotFound("container %s", id)
}

func (f *fakeRuntime) Containers(sandbox.ContainerFilter) []sandbox.ContainerView { return f.ctrs }

func (f *fakeRuntime) ContainerSpec(string) (json.RawMessage, error) {
	return json.Marshal(&specs.Spec{Process: &specs.Process{Args: []string{"sh"}}})
}

func (f *fakeRuntime) UpdateContainerResources(_ context.Context, id string, _ sandbox.ResourceUpdate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, id)
	return nil
}

// plugin injects an env var and an annotation, refuses containers named
// "refused", and records the events it sees.
type plugin struct {
	mu     sync.Mutex
	events []string
	synced int
	// syncDone is closed once the runtime has shown the plugin what runs:
	// only then does the runtime send it events.
	syncDone chan struct{}
	ping     bool
}

func (p *plugin) saw(ev string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}

func (p *plugin) Synchronize(_ context.Context, _ []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.synced = len(ctrs)
	close(p.syncDone)
	return nil, nil
}

func (p *plugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	if pod.GetId() == "ping" {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.ping = true
	}
	return nil
}

func (p *plugin) pinged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ping
}

func (p *plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.saw("RunPodSandbox " + pod.GetName())
	return nil
}

func (p *plugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	if c.GetName() == "refused" {
		return nil, nil, errors.New("no such containers here")
	}
	p.saw("CreateContainer " + c.GetName())
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("NRI_INJECTED", "yes")
	adj.AddAnnotation("nri.crib.test/injected", "yes")
	return adj, nil, nil
}

func (p *plugin) UpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.saw("UpdateContainer " + c.GetName())
	u := &api.ContainerUpdate{ContainerId: c.GetId()}
	u.SetLinuxCPUShares(123)
	return []*api.ContainerUpdate{u}, nil
}

func (p *plugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.saw("RemoveContainer " + c.GetName())
	return nil
}

func (p *plugin) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.saw("StopContainer " + c.GetName())
	return nil, nil
}

func TestAdapterWithPlugin(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default().NRI
	cfg.Enable = true
	cfg.SocketPath = filepath.Join(dir, "nri.sock")
	cfg.PluginPath = filepath.Join(dir, "plugins")
	cfg.PluginConfigPath = filepath.Join(dir, "conf.d")
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	a, err := New(cfg, "crib", "test", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	pod := sandbox.View{Sandbox: state.Sandbox{ID: "p1", Metadata: state.PodMetadata{Name: "web"}, Phase: state.PhaseReady}}
	running := sandbox.ContainerView{Container: state.Container{ID: "c0", PodID: "p1", Name: "old"}}
	running.Shim.Status = "running"
	rt := &fakeRuntime{pod: pod, ctrs: []sandbox.ContainerView{running}}
	if err := a.Start(rt); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()

	p := &plugin{syncDone: make(chan struct{})}
	s, err := stub.New(p, stub.WithSocketPath(cfg.SocketPath), stub.WithPluginName("test"), stub.WithPluginIdx("10"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	select {
	case <-p.syncDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin was never synchronized")
	}
	// The runtime sends a plugin events once its registration ends, a
	// little after Synchronize returns: ping until one arrives.
	for deadline := time.Now().Add(10 * time.Second); !p.pinged(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the plugin never got an event")
		}
		if err := a.nri.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: &api.PodSandbox{Id: "ping"}}); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	synced := p.synced
	p.mu.Unlock()
	if synced != 1 {
		t.Errorf("plugin was shown %d containers at registration, want 1", synced)
	}

	if _, err := a.RunPodSandbox(ctx, func() (string, error) { return "p1", nil }); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{Process: &specs.Process{Env: []string{"PATH=/bin"}}}
	if err := a.AdjustSpec(ctx, &pod.Sandbox, &state.Container{ID: "c1", PodID: "p1", Name: "app"}, spec); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Process.Env, "NRI_INJECTED=yes") || spec.Annotations["nri.crib.test/injected"] != "yes" {
		t.Errorf("adjusted spec: env %q annotations %v", spec.Process.Env, spec.Annotations)
	}
	err = a.AdjustSpec(ctx, &pod.Sandbox, &state.Container{ID: "c2", PodID: "p1", Name: "refused"}, &specs.Spec{})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "plugin 10-test refused to create container refused") ||
		!strings.HasSuffix(err.Error(), ": no such containers here") {
		t.Errorf("refused create: error %v, want FailedPrecondition naming the plugin and giving its reason", err)
	}
	res, err := a.UpdateContainer(ctx, "c0", &specs.LinuxResources{CPU: &specs.LinuxCPU{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.CPU == nil || res.CPU.Shares == nil || *res.CPU.Shares != 123 {
		t.Errorf("update adjusted by the plugin: %+v", res.CPU)
	}
	// A create that fails after the plugins adjusted it is told to them
	// as the container's stop and removal.
	a.UndoAdjust(ctx, &pod.Sandbox, &state.Container{ID: "c1", PodID: "p1", Name: "app"}, spec)
	stopped := false
	if err := a.StopContainer(ctx, "c0", func() error { stopped = true; return nil }); err != nil || !stopped {
		t.Fatalf("stop: %v, ran %v", err, stopped)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	want := []string{"RunPodSandbox web", "CreateContainer app", "UpdateContainer old", "StopContainer app", "RemoveContainer app", "StopContainer old"}
	if !slices.Equal(p.events, want) {
		t.Errorf("plugin saw %q, want %q", p.events, want)
	}
}
