//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crib-runtime/crib/tests/harness"
)

// Env is one end-to-end setup: a loopback registry, a cribd whose
// registries.conf points the public registries at it, and a standalone
// kubelet running static pods from ManifestDir on that cribd.
type Env struct {
	t        *testing.T
	Dir      string
	Registry *harness.Registry
	Cribd    *harness.Cribd
	Kubelet  *Kubelet
}

// Kubelet is one running kubelet.
type Kubelet struct {
	t            *testing.T
	Dir          string // its root dir, cert dir, volume plugin dir, config
	ManifestDir  string
	PodLogsDir   string
	ConfigPath   string
	LogPath      string
	NodeName     string
	CgroupRoot   string
	ReadOnlyPort int
	HealthzPort  int

	proc *harness.Process // nil before Start
}

// startEnv starts the registry, cribd and kubelet. Cleanup runs in reverse:
// kubelet's pods are removed and kubelet stops, then cribd removes what
// pods remain, stops and checks for leaks (harness.Cribd), then the host
// state kubelet changed is restored.
func startEnv(t *testing.T) *Env {
	t.Helper()
	return startEnvConfig(t, "")
}

// startEnvConfig is startEnv with cribdConfig appended to cribd's
// crib.toml (placeholders as harness.Options.ExtraConfig).
func startEnvConfig(t *testing.T, cribdConfig string) *Env {
	t.Helper()
	// Registered first so they run last, after kubelet has stopped.
	saveSysctls(t)
	saveIPTables(t)
	_, err := os.Stat("/var/log/containers")
	hadLogLinks := err == nil

	reg := harness.StartRegistry(t, harness.RegistryOptions{})
	// A short name: cribd puts unix sockets under run_dir/pods/<64-hex>/
	// and refuses a run_dir over 27 characters.
	c := harness.Start(t, harness.Options{
		Name:        "ce2e",
		Network:     network,
		NoStart:     true,
		Plugins:     map[string]string{"crib-e2e-gate": gatePlugin},
		ConfFiles:   map[string]string{"10-cribe2e.conflist": gatedConflist},
		ExtraConfig: "\n[image]\nregistries_conf = \"@DIR@/registries.conf\"\n" + cribdConfig,
	})
	e := &Env{t: t, Dir: c.Dir, Registry: reg, Cribd: c}
	t.Cleanup(func() { removeContainerLogLinks(t, e.Dir, hadLogLinks) })
	if err := os.WriteFile(filepath.Join(c.Dir, "registries.conf"), []byte(harness.RegistriesConf(reg.Addr, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Start()
	e.Kubelet = startKubelet(t, filepath.Join(c.Dir, "kubelet"), c.Socket, c.CgroupParent)
	return e
}

// gatePlugin is a CNI plugin chained last on every e2e cribd: it passes
// its prevResult through, except that ADD fails, with a CNI error, for pods
// whose name begins with "cnifail".
const gatePlugin = `#!/bin/sh
input=$(cat)
case "$CNI_COMMAND" in
ADD)
	case ";$CNI_ARGS" in
	*";K8S_POD_NAME=cnifail"*)
		echo '{"cniVersion":"1.0.0","code":100,"msg":"crib-e2e-gate refuses this pod"}'
		exit 1 ;;
	esac
	printf '%s' "$input" | jq -c '.prevResult // {"cniVersion":"1.0.0"}' ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}' ;;
esac
exit 0
`

// gatedConflist is the default bridge network with crib-e2e-gate last.
var gatedConflist = strings.Replace(harness.DefaultConflist,
	`{"type": "portmap", "capabilities": {"portMappings": true}}`,
	`{"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "crib-e2e-gate"}`, 1)

// startKubelet starts a kubelet with its dirs under dir on the CRI runtime
// at socket, its pod cgroups below cgroupRoot (the runtime's cgroup
// parent, which it creates in every hierarchy).
func startKubelet(t *testing.T, dir, socket, cgroupRoot string) *Kubelet {
	t.Helper()
	k := &Kubelet{
		t:            t,
		Dir:          dir,
		ManifestDir:  filepath.Join(dir, "manifests"),
		PodLogsDir:   filepath.Join(dir, "pod-logs"),
		ConfigPath:   filepath.Join(dir, "kubelet.yaml"),
		LogPath:      filepath.Join(dir, "kubelet.log"),
		NodeName:     "crib-e2e",
		CgroupRoot:   cgroupRoot, // kubelet's pod cgroups live under the runtime's parent
		ReadOnlyPort: freePort(t),
		HealthzPort:  freePort(t),
	}
	for _, d := range []string{k.ManifestDir, k.PodLogsDir, filepath.Join(dir, "root"), filepath.Join(dir, "certs"), filepath.Join(dir, "volume-plugins")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	harness.MakeCgroupRoot(t, k.CgroupRoot)
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %q
fileCheckFrequency: 1s
syncFrequency: 5s
cgroupDriver: cgroupfs
cgroupRoot: %q
failCgroupV1: false
failSwapOn: false
address: 127.0.0.1
port: %d
readOnlyPort: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://%s
imageServiceEndpoint: unix://%s
volumePluginDir: %q
podLogsDir: %q
registerNode: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
containerLogMaxSize: 1Mi
containerLogMaxFiles: 20
containerLogMonitorInterval: 3s
featureGates:
  KubeletCrashLoopBackOffMax: true
crashLoopBackOff:
  maxContainerRestartPeriod: 5s
evictionHard:
  memory.available: 1Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
`, k.ManifestDir, k.CgroupRoot, freePort(t), k.ReadOnlyPort, k.HealthzPort, socket, socket,
		filepath.Join(dir, "volume-plugins"), k.PodLogsDir)
	if err := os.WriteFile(k.ConfigPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.cleanup)
	k.Start()
	return k
}

// Start starts kubelet and waits for /healthz.
func (k *Kubelet) Start() {
	k.t.Helper()
	args := []string{kubeletPath(),
		"--config", k.ConfigPath,
		"--root-dir", filepath.Join(k.Dir, "root"),
		"--cert-dir", filepath.Join(k.Dir, "certs"),
		"--hostname-override", k.NodeName,
		"--v", "3",
	}
	if os.Getenv("CRIB_E2E_HIDE_HUGEPAGES") != "" {
		// Diagnostic only: kubelet sets a 0 hugetlb limit for every page
		// size the machine has, and cribd fails CreateContainer when the
		// hugetlb cgroup controller is not mounted. Hiding the sizes from
		// kubelet (a tmpfs over /sys/kernel/mm/hugepages in a mount
		// namespace that still receives the host's mounts) gets past it.
		args = append([]string{"unshare", "--mount", "--propagation", "slave", "sh", "-c",
			`mount -t tmpfs -o ro,size=4k none /sys/kernel/mm/hugepages && exec "$@"`, "kubelet"}, args...)
		logf, err := os.OpenFile(k.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			k.t.Fatal(err)
		}
		fmt.Fprintf(logf, "===== e2e: CRIB_E2E_HIDE_HUGEPAGES set: kubelet sees no hugepage sizes =====\n")
		logf.Close()
	}
	k.proc = harness.StartProcess(k.t, "kubelet", exec.Command(args[0], args[1:]...), k.LogPath)
	k.proc.WaitReady(k.t, 60*time.Second, "kubelet /healthz", func() (bool, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", k.HealthzPort))
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200, fmt.Sprintf("%s: %s", resp.Status, b)
	})
}

// Stop sends SIGTERM, then SIGKILL after 20s.
func (k *Kubelet) Stop() {
	if k.proc != nil {
		k.proc.Stop(k.t, 20*time.Second)
	}
}

func (k *Kubelet) cleanup() {
	crashed := k.proc != nil && k.proc.Crashed()
	if crashed {
		k.t.Errorf("kubelet exited during the test: %v", k.proc.ExitErr())
	} else {
		k.drain()
	}
	k.Stop()
	// kubelet's volume and pod dirs may hold mounts (tmpfs for secrets,
	// emptyDir medium Memory); unmount whatever is left under its dir.
	// kubelet bind mounts its root dir onto itself (to make it rshared) and
	// leaves that mount when it exits; anything else is a leak.
	root := filepath.Join(k.Dir, "root")
	for _, m := range mountsUnder(k.Dir) {
		if m != root {
			k.t.Errorf("leftover mount after kubelet stopped: %s", m)
		}
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			k.t.Errorf("cleanup: umount %s: %v", m, err)
		}
	}
	// The QoS cgroups kubelet made at start; a pod cgroup left below them
	// keeps them, and the harness's leak check names it.
	for _, qos := range []string{"kubepods/besteffort", "kubepods/burstable", "kubepods"} {
		for _, d := range cgroupDirs(filepath.Join(k.CgroupRoot, qos)) {
			_ = os.Remove(d)
		}
	}
	if k.proc != nil {
		k.proc.LogOnFailure(k.t, 600)
	}
}

// drain removes every manifest and waits for kubelet to stop the pods and
// remove their cgroups, as it does for a deleted pod, so that kubelet
// leaves nothing of its own on the node when it stops.
func (k *Kubelet) drain() {
	manifests, _ := filepath.Glob(filepath.Join(k.ManifestDir, "*.yaml"))
	if len(manifests) == 0 {
		return
	}
	for _, m := range manifests {
		_ = os.Remove(m)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pods, err := k.Pods()
		cgroups := k.podCgroups()
		if err == nil && len(pods) == 0 && len(cgroups) == 0 {
			return
		}
		if time.Now().After(deadline) {
			k.t.Errorf("cleanup: 60s after its manifests were removed, kubelet still lists %d pods (%v) and pod cgroups %v", len(pods), err, cgroups)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// podCgroups lists the pod cgroups below kubelet's QoS cgroups.
func (k *Kubelet) podCgroups() []string {
	var out []string
	for _, qos := range []string{"kubepods", "kubepods/besteffort", "kubepods/burstable"} {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", k.CgroupRoot, qos, "pod*"))
		out = append(out, dirs...)
	}
	return out
}

// KubeletPod is the part of kubelet's /pods answer the tests read.
type KubeletPod struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		UID         string            `json:"uid"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		InitContainerStatuses []ContainerStatus `json:"initContainerStatuses"`
		ContainerStatuses     []ContainerStatus `json:"containerStatuses"`
	} `json:"status"`
}

// ContainerStatus is one container's status in KubeletPod.
type ContainerStatus struct {
	Name         string         `json:"name"`
	Ready        bool           `json:"ready"`
	RestartCount int            `json:"restartCount"`
	ContainerID  string         `json:"containerID"`
	State        map[string]any `json:"state"`
	LastState    map[string]any `json:"lastState"`
}

// Pods reads kubelet's read-only /pods endpoint.
func (k *Kubelet) Pods() ([]KubeletPod, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/pods", k.ReadOnlyPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("/pods: %s: %s", resp.Status, b)
	}
	var list struct {
		Items []KubeletPod `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("/pods: %v: %s", err, b)
	}
	return list.Items, nil
}

// Pod is the static pod named name (kubelet appends "-<node name>").
func (k *Kubelet) Pod(name string) (KubeletPod, bool, error) {
	pods, err := k.Pods()
	if err != nil {
		return KubeletPod{}, false, err
	}
	for _, p := range pods {
		if p.Metadata.Name == name+"-"+k.NodeName {
			return p, true, nil
		}
	}
	return KubeletPod{}, false, nil
}

// WriteManifest writes a static pod manifest atomically (kubelet ignores
// dot files, so the temp file is never read half-written).
func (k *Kubelet) WriteManifest(name, body string) {
	k.t.Helper()
	tmp := filepath.Join(k.ManifestDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.ManifestDir, name+".yaml")); err != nil {
		k.t.Fatal(err)
	}
}

// RemoveManifest deletes a manifest written by WriteManifest.
func (k *Kubelet) RemoveManifest(name string) {
	k.t.Helper()
	if err := os.Remove(filepath.Join(k.ManifestDir, name+".yaml")); err != nil {
		k.t.Fatal(err)
	}
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	var out []string
	for _, line := range strings.Split(readFile("/proc/self/mountinfo"), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append([]string{f[4]}, out...)
		}
	}
	return out
}
