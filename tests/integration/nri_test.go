//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// nriPlugin is a small NRI plugin: it injects an env var and an
// annotation into every container, refuses containers named "refused"
// and pods whose name starts so, and records the events it sees.
type nriPlugin struct {
	mu     sync.Mutex
	events []string
}

func (p *nriPlugin) saw(ev string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}

func (p *nriPlugin) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func (p *nriPlugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.saw("RunPodSandbox " + pod.GetName())
	if strings.HasPrefix(pod.GetName(), "refused") {
		return errors.New("the crib-test plugin refuses pods named refused")
	}
	return nil
}

func (p *nriPlugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.saw("StopPodSandbox " + pod.GetName())
	return nil
}

func (p *nriPlugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.saw("RemovePodSandbox " + pod.GetName())
	return nil
}

func (p *nriPlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.saw("CreateContainer " + c.GetName())
	if c.GetName() == "refused" {
		return nil, nil, errors.New("the crib-test plugin refuses containers named refused")
	}
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("NRI_INJECTED", "by-crib-test")
	adj.AddAnnotation("crib.test/nri-injected", "yes")
	return adj, nil, nil
}

func (p *nriPlugin) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.saw("StartContainer " + c.GetName())
	return nil
}

func (p *nriPlugin) UpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.saw("UpdateContainer " + c.GetName())
	return nil, nil
}

func (p *nriPlugin) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.saw("StopContainer " + c.GetName())
	return nil, nil
}

func (p *nriPlugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.saw("RemoveContainer " + c.GetName())
	return nil
}

// TestNRIPlugin: with [nri] enabled, a plugin connected to the socket
// sees the pod's and the container's lifecycle, its env var and
// annotation reach the container (exec env, inspect's runtimeSpec), and
// its refusal fails CreateContainer with FailedPrecondition, leaving no
// container.
func TestNRIPlugin(t *testing.T) {
	h, _ := imageHarness(t, "", `
[nri]
enable = true
socket_path = "@DIR@/nri.sock"
plugin_path = "@DIR@/nri-plugins"
plugin_config_path = "@DIR@/nri-conf"
`)
	sock := filepath.Join(h.Dir, "nri.sock")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("cribd with NRI enabled made no socket: %v", err)
	}
	h.Crictl("pull", "busybox")

	p := &nriPlugin{}
	s, err := stub.New(p, stub.WithSocketPath(sock), stub.WithPluginName("crib-test"), stub.WithPluginIdx("10"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	// cribd sends a plugin events once it is synchronized, a little after
	// its registration returns.
	eventually(t, 20*time.Second, "plugin synchronized (cribd log)", func() (bool, string) {
		// logrus's text format escapes the quotes around the name.
		return strings.Contains(h.Log(), `10-crib-test\" connected and synchronized`), "not yet"
	})

	pod := podConfig("nri")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	podID := h.RunPod(pod)
	id := h.CreateContainer(podID, shellContainer("app", "exec sleep 600"), pod)

	var st struct {
		Info struct {
			RuntimeSpec struct {
				Annotations map[string]string `json:"annotations"`
				Process     struct {
					Env []string `json:"env"`
				} `json:"process"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	h.CrictlJSON(&st, "inspect", "-o", "json", id)
	if got := st.Info.RuntimeSpec.Annotations["crib.test/nri-injected"]; got != "yes" {
		t.Errorf("inspect: runtimeSpec annotation crib.test/nri-injected = %q, want yes (annotations %v)", got, st.Info.RuntimeSpec.Annotations)
	}
	if !slices.Contains(st.Info.RuntimeSpec.Process.Env, "NRI_INJECTED=by-crib-test") {
		t.Errorf("inspect: runtimeSpec env %q lacks NRI_INJECTED", st.Info.RuntimeSpec.Process.Env)
	}

	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	if env := h.Crictl("exec", id, "env"); !strings.Contains(env, "NRI_INJECTED=by-crib-test") {
		t.Errorf("env inside the container lacks the plugin's variable:\n%s", env)
	}
	h.Crictl("update", "--cpu-period", "100000", "--cpu-quota", "50000", id)

	// A plugin's refusal fails the create, names NRI, and leaves nothing.
	refusedCfg := shellContainer("refused", "exec sleep 600")
	b, err := json.Marshal(refusedCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(h.Dir, "refused.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := h.CrictlRaw("create", podID, cfgPath, h.WritePodConfig(pod))
	if err == nil {
		t.Fatal("create of a container the plugin refuses succeeded")
	}
	if msg := crictlError(stderr); !strings.Contains(msg, "FailedPrecondition") || !strings.Contains(msg, "NRI: plugin 10-crib-test refused") || !strings.Contains(msg, "refuses containers named refused") {
		t.Errorf("refused create: %s; want FailedPrecondition naming the plugin and its reason", msg)
	}
	if ids := strings.Fields(h.Crictl("ps", "-a", "-q", "--pod", podID)); len(ids) != 1 || ids[0] != id {
		t.Errorf("containers after the refused create: %q, want only %s", ids, id)
	}

	h.Crictl("stop", id)
	h.Crictl("rm", id)
	h.Crictl("stopp", podID)
	h.Crictl("rmp", podID)

	// A pod the plugin refuses fails RunPodSandbox and is removed (the
	// harness's leak check finds anything it left).
	refusedPod := podConfig("refused")
	_, stderr, err = h.CrictlRaw("runp", h.WritePodConfig(refusedPod))
	if err == nil {
		t.Fatal("runp of a pod the plugin refuses succeeded")
	}
	if msg := crictlError(stderr); !strings.Contains(msg, "FailedPrecondition") || !strings.Contains(msg, "NRI: plugin 10-crib-test failed RunPodSandbox") {
		t.Errorf("refused runp: %s; want FailedPrecondition naming the plugin", msg)
	}
	if pods := strings.Fields(h.Crictl("pods", "-q")); len(pods) != 0 {
		t.Errorf("pods after the refused runp: %q, want none", pods)
	}
	refusedName := refusedPod["metadata"].(map[string]any)["name"].(string)

	name := pod["metadata"].(map[string]any)["name"].(string)
	want := []string{
		"RunPodSandbox " + name,
		"CreateContainer app",
		"StartContainer app",
		"UpdateContainer app",
		"CreateContainer refused",
		"StopContainer app",
		"RemoveContainer app",
		"StopPodSandbox " + name,
		"RemovePodSandbox " + name,
		// The refused pod is removed as it ran: plugins are told so.
		"RunPodSandbox " + refusedName,
		"StopPodSandbox " + refusedName,
		"RemovePodSandbox " + refusedName,
	}
	if got := p.seen(); !slices.Equal(got, want) {
		t.Errorf("the plugin saw\n%q\nwant\n%q", got, want)
	}
}
