//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// handlerHarness starts a registry-backed cribd with the crun and runc
// runtime handlers (Debian's packages, scripts/install-deps.sh) and pulls
// busybox.
func handlerHarness(t *testing.T) *Harness {
	t.Helper()
	for _, rt := range []string{"crun", "runc"} {
		if _, err := exec.LookPath(rt); err != nil {
			t.Fatalf("%s is not installed (scripts/install-deps.sh installs it): %v", rt, err)
		}
	}
	h, _ := imageHarness(t, "", `
[runtime.handlers.crun]
runtime_path = "crun"

[runtime.handlers.runc]
runtime_type = "oci"
runtime_path = "/usr/sbin/runc"
`)
	h.Crictl("pull", "busybox")
	return h
}

// handlerPod runs a pod with a log directory under runtime handler rt.
func handlerPod(h *Harness, name, rt string) (string, map[string]any) {
	h.t.Helper()
	pod := podConfig(name)
	pod["log_directory"] = filepath.Join(h.Dir, "logs-"+name)
	id := strings.TrimSpace(h.Crictl("runp", "--runtime", rt, h.WritePodConfig(pod)))
	if !isPodID(id) {
		h.t.Fatalf("crictl runp --runtime %s printed %q, not a pod ID", rt, id)
	}
	return id, pod
}

// runtimeKnows reports whether the runtime handler's state root holds
// container id (runc and crun keep a directory per container there).
func runtimeKnows(h *Harness, handler, id string) bool {
	_, err := os.Stat(filepath.Join(h.RunDir, "runtimes", handler, id))
	return err == nil
}

// TestRuntimeHandler: a pod under the runc or the crun handler runs its
// containers through that runtime: logs, exit codes, exec with and without
// a terminal, a terminal container, stop, OOM kill, a cribd restart in
// between; its pause process is crib's own; Status lists every handler;
// nothing is left in the runtime's state root or anywhere else.
func TestRuntimeHandler(t *testing.T) {
	for _, rt := range []string{"runc", "crun"} {
		t.Run(rt, func(t *testing.T) {
			if rt == "crun" {
				skipCrunOnHybridCgroups(t)
			}
			testRuntimeHandler(t, rt)
		})
	}
}

// skipCrunOnHybridCgroups skips where crun cannot create a container at
// all: a hybrid cgroup host whose unified hierarchy has a controller (such
// as hugetlb when v1 does not mount it), which crun refuses ("cgroups in
// hybrid mode not supported, drop all controllers from cgroupv2").
func skipCrunOnHybridCgroups(t *testing.T) {
	t.Helper()
	if data, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil && strings.TrimSpace(string(data)) != "" {
		t.Skipf("crun refuses hybrid cgroup hosts whose cgroup v2 has controllers (here %q)", strings.TrimSpace(string(data)))
	}
}

func testRuntimeHandler(t *testing.T, rt string) {
	h := handlerHarness(t)

	var info struct {
		RuntimeHandlers []struct {
			Name     string `json:"name"`
			Features struct {
				// crictl marshals the handlers with encoding/json.
				RecursiveReadOnlyMounts bool `json:"recursive_read_only_mounts"`
				UserNamespaces          bool `json:"user_namespaces"`
			} `json:"features"`
		} `json:"runtimeHandlers"`
	}
	h.CrictlJSON(&info, "info", "-o", "json")
	var names []string
	for _, rh := range info.RuntimeHandlers {
		names = append(names, rh.Name)
	}
	if strings.Join(names, ",") != ",crun,runc" {
		t.Fatalf("Status lists handlers %q, want the default, crun and runc", names)
	}
	// Each handler's own features: runc 1.1 reports rro but no idmapped
	// mounts through its features command; crun 1.8 has no such command,
	// so neither; and no handler has what the node lacks.
	def, crun, runc := info.RuntimeHandlers[0].Features, info.RuntimeHandlers[1].Features, info.RuntimeHandlers[2].Features
	if crun.UserNamespaces || crun.RecursiveReadOnlyMounts || runc.UserNamespaces || runc.RecursiveReadOnlyMounts != def.RecursiveReadOnlyMounts {
		t.Errorf("handler features: default %+v, crun %+v, runc %+v", def, crun, runc)
	}
	t.Logf("handler features: default %+v, crun %+v, runc %+v", def, crun, runc)

	podID, pod := handlerPod(h, rt+"-pod", rt)
	if got := h.Inspect(podID); got.Status.State != "SANDBOX_READY" {
		t.Fatalf("%s pod: %+v", rt, got.Status)
	}
	// The sandbox is crib's own under every handler.
	if name := processName(h.PausePID(podID)); name != "crib-pause" {
		t.Errorf("pause process of a %s pod is %q, want crib-pause", rt, name)
	}

	id := h.CreateContainer(podID, shellContainer("echo", "echo hello; echo oops >&2; exec sleep 600"), pod)
	if !runtimeKnows(h, rt, id) {
		t.Fatalf("%s's state root has no container %s after create", rt, id[:12])
	}
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	eventually(t, 10*time.Second, "log lines", func() (bool, string) {
		out, errOut, _ := h.crictlRaw("logs", id)
		return strings.Contains(out, "hello") && strings.Contains(errOut, "oops"), out + errOut
	})
	// Stats come from the cgroup the shim read off the init; an update
	// goes through the runtime's update command to that cgroup.
	c := h.client()
	if resp, err := c.ContainerStats(ctx30(t), &runtimeapi.ContainerStatsRequest{ContainerId: id}); err != nil || resp.GetStats().GetMemory().GetWorkingSetBytes().GetValue() == 0 {
		t.Errorf("stats: %v, %v: want a working set", err, resp)
	}
	h.Crictl("update", "--memory", "67108864", id)
	limits, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "memory", strings.TrimPrefix(h.CgroupParent, "/"), id, "memory.limit_in_bytes"))
	v2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(h.CgroupParent, "/"), id, "memory.max"))
	limits = append(limits, v2...)
	if len(limits) == 0 {
		t.Errorf("no memory limit file for container %s under %s", id[:12], h.CgroupParent)
	}
	for _, f := range limits {
		if got, _ := os.ReadFile(f); strings.TrimSpace(string(got)) != "67108864" {
			t.Errorf("%s = %q after crictl update --memory 64Mi", f, got)
		}
	}
	if out := h.Crictl("exec", "-s", id, "echo", "via-"+rt); strings.TrimSpace(out) != "via-"+rt {
		t.Errorf("exec -s: %q", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout strings.Builder
	cmd := h.crictlCmd(ctx, "exec", "-i", id, "cat")
	cmd.Stdin, cmd.Stdout = strings.NewReader("in\nput\n"), &stdout
	if err := cmd.Run(); err != nil || stdout.String() != "in\nput\n" {
		t.Errorf("exec -i cat: %v, %q", err, stdout.String())
	}
	// A terminal: the runtime sends the master to a console socket the
	// shim passes on.
	var quoted []string
	for _, a := range h.crictlCmd(ctx, "exec", "-it", id, "sh", "-c", "tty; exit 4").Args {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	out, err := exec.CommandContext(ctx, "script", "-qec", strings.Join(quoted, " "), "/dev/null").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "exit code 4") {
		t.Errorf("exec -it: %v, output %q: want a /dev/pts terminal and exit code 4", err, out)
	}

	ttyCfg := shellContainer("tty", "tty; exec sleep 600")
	ttyCfg["tty"] = true
	ttyID := h.CreateContainer(podID, ttyCfg, pod)
	h.Crictl("start", ttyID)
	eventually(t, 10*time.Second, "the terminal container's log", func() (bool, string) {
		out, _, _ := h.crictlRaw("logs", ttyID)
		return strings.Contains(out, "/dev/pts/"), out
	})

	// The shim holds the containers: a cribd killed and restarted finds
	// them running and can still reach them through the runtime.
	h.Kill()
	h.Start()
	if st := h.InspectContainer(id); st.Status.State != "CONTAINER_RUNNING" {
		t.Fatalf("after cribd restart: %+v", st.Status)
	}
	if out := h.Crictl("exec", "-s", id, "echo", "after-restart"); strings.TrimSpace(out) != "after-restart" {
		t.Errorf("exec after restart: %q", out)
	}
	h.Crictl("stop", "-t", "5", id)
	if st := h.InspectContainer(id); st.Status.State != "CONTAINER_EXITED" || st.Status.ExitCode != 143 || st.Status.Reason != "Error" {
		t.Errorf("after stop: %+v, want EXITED 143 Error (SIGTERM)", st.Status)
	}

	exit3 := h.CreateContainer(podID, shellContainer("exit3", "echo bye; exit 3"), pod)
	h.Crictl("start", exit3)
	if st := h.waitContainerState(exit3, "CONTAINER_EXITED"); st.Status.ExitCode != 3 || st.Status.Reason != "Error" {
		t.Errorf("exit 3: %+v", st.Status)
	}

	hog := shellContainer("hog", "x=a; while true; do x=$x$x; done")
	hog["linux"] = map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 32 << 20}}
	hogID := h.CreateContainer(podID, hog, pod)
	h.Crictl("start", hogID)
	if st := h.waitContainerState(hogID, "CONTAINER_EXITED"); st.Status.ExitCode != 137 || st.Status.Reason != "OOMKilled" {
		t.Errorf("hog: %+v, want 137 OOMKilled", st.Status)
	}

	for _, c := range []string{id, ttyID, exit3, hogID} {
		h.Crictl("rm", "-f", c)
		if runtimeKnows(h, rt, c) {
			t.Errorf("%s still has container %s after rm", rt, c[:12])
		}
	}
	// A pod removed with a running container leaves nothing in the
	// runtime's state root either.
	sleeper := h.CreateContainer(podID, shellContainer("sleeper", "exec sleep 600"), pod)
	h.Crictl("start", sleeper)
	h.waitContainerState(sleeper, "CONTAINER_RUNNING")
	h.Crictl("rmp", "-f", podID)
	if left, _ := os.ReadDir(filepath.Join(h.RunDir, "runtimes", rt)); len(left) != 0 {
		t.Errorf("%s's state root holds %d entries after the pod went", rt, len(left))
	}
}

// TestRuntimeHandlerRefusals: a pod asking for a handler that is not
// configured is refused with InvalidArgument naming it; what a handler's
// runtime cannot do is refused naming the handler (a pod user namespace
// under runc 1.1, which has no idmapped mounts; a recursive read-only
// mount under crun 1.8, which reports no features), even where the node
// could; nothing is left behind.
func TestRuntimeHandlerRefusals(t *testing.T) {
	h := handlerHarness(t)
	_, stderr, err := h.crictlRaw("runp", "--runtime", "kata", h.WritePodConfig(podConfig("kata-pod")))
	msg := strings.ReplaceAll(crictlError(stderr), `\"`, `"`)
	if err == nil || !strings.Contains(msg, "InvalidArgument") || !strings.Contains(msg, `runtime_handler "kata" is not configured (handlers: crun, runc)`) {
		t.Errorf("runp --runtime kata: %v, %q: want InvalidArgument naming the handler", err, msg)
	}

	userns := podConfig("userns-runc")
	userns["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"userns_options": usernsOptions()}}}
	_, stderr, err = h.crictlRaw("runp", "--runtime", "runc", h.WritePodConfig(userns))
	msg = strings.ReplaceAll(crictlError(stderr), `\"`, `"`)
	if err == nil || !strings.Contains(msg, "FailedPrecondition") || !strings.Contains(msg, `runtime handler "runc" cannot run pods with user namespaces`) {
		t.Errorf("user namespace pod under runc: %v, %q: want FailedPrecondition naming the handler", err, msg)
	}
	if out := h.Crictl("pods", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("pods after refused runps: %q", out)
	}

	podID, pod := handlerPod(h, "rro-crun", "crun")
	src := t.TempDir()
	cfg := shellContainer("rro", "true")
	cfg["mounts"] = []map[string]any{{"container_path": "/data", "host_path": src, "readonly": true, "recursive_read_only": true}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctrFile := filepath.Join(h.Dir, "rro.json")
	if err := os.WriteFile(ctrFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = h.crictlRaw("create", podID, ctrFile, h.WritePodConfig(pod))
	msg = strings.ReplaceAll(crictlError(stderr), `\"`, `"`)
	if err == nil || !strings.Contains(msg, "FailedPrecondition") || !strings.Contains(msg, `runtime handler "crun" cannot make`) {
		t.Errorf("recursive read-only mount under crun: %v, %q: want FailedPrecondition naming the handler", err, msg)
	}
	if out := h.Crictl("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers after a refused create: %q", out)
	}
	h.Crictl("rmp", "-f", podID)
}

// TestRuntimeHandlerShimDeath: when the shim of a runc pod dies, cribd
// does its part on removal: the container's processes and cgroup go, and
// runc deletes its state of the container (the leak check fails on a
// container left in the handler's state root).
func TestRuntimeHandlerShimDeath(t *testing.T) {
	h := handlerHarness(t)
	podID, pod := handlerPod(h, "shimdeath-runc", "runc")
	id := h.CreateContainer(podID, shellContainer("sleeper", "exec sleep 600"), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	h.killShim(podID)
	h.Crictl("rmp", "-f", podID)
	if runtimeKnows(h, "runc", id) {
		t.Errorf("runc still holds container %s after its pod was removed without a shim", id[:12])
	}
}
