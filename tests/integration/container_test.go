//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerPod starts a registry-backed cribd, pulls busybox and runs a pod
// with a log directory; it returns the harness, the pod ID and its config.
func containerPod(t *testing.T) (*Harness, string, map[string]any) {
	t.Helper()
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	pod := podConfig("ctr")
	pod["log_directory"] = filepath.Join(h.Dir, "logs")
	return h, h.RunPod(pod), pod
}

// CreateContainer runs crictl create with cfg in pod and returns the ID.
func (h *Harness) CreateContainer(podID string, cfg, pod map[string]any) string {
	h.t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	f, err := os.CreateTemp(h.Dir, "ctr-*.json")
	if err != nil {
		h.t.Fatal(err)
	}
	f.Write(b)
	f.Close()
	id := strings.TrimSpace(h.Crictl("create", podID, f.Name(), h.WritePodConfig(pod)))
	if !isPodID(id) {
		h.t.Fatalf("crictl create printed %q, not a 64-hex container ID", id)
	}
	return id
}

// ContainerStatus is the part of `crictl inspect` the tests read.
type ContainerStatus struct {
	Status struct {
		State    string `json:"state"`
		ExitCode int    `json:"exitCode"`
		Reason   string `json:"reason"`
		LogPath  string `json:"logPath"`
		// protojson writes int64 as strings: kept raw.
		Resources struct {
			Linux struct {
				CPUQuota           json.RawMessage `json:"cpuQuota"`
				MemoryLimitInBytes json.RawMessage `json:"memoryLimitInBytes"`
			} `json:"linux"`
		} `json:"resources"`
	} `json:"status"`
	Info struct {
		Pid         int `json:"pid"`
		RuntimeSpec struct {
			Process struct {
				Args []string `json:"args"`
			} `json:"process"`
		} `json:"runtimeSpec"`
	} `json:"info"`
}

func (h *Harness) InspectContainer(id string) ContainerStatus {
	h.t.Helper()
	var st ContainerStatus
	h.CrictlJSON(&st, "inspect", "-o", "json", id)
	return st
}

func (h *Harness) waitContainerState(id, want string) ContainerStatus {
	h.t.Helper()
	var st ContainerStatus
	eventually(h.t, 20*time.Second, "container "+id[:12]+" "+want, func() (bool, string) {
		st = h.InspectContainer(id)
		return st.Status.State == want, st.Status.State
	})
	return st
}

func shellContainer(name, script string) map[string]any {
	return map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": "busybox"},
		"command":  []string{"/bin/sh", "-c", script},
		"log_path": name + ".log",
		"linux":    map[string]any{},
	}
}

// TestContainerLifecycle: create, start, ps, logs, stop, rm; exit codes and
// reasons; nothing left behind.
func TestContainerLifecycle(t *testing.T) {
	h, podID, pod := containerPod(t)

	id := h.CreateContainer(podID, shellContainer("echo", "echo hello; echo oops >&2; exec sleep 600"), pod)
	st := h.InspectContainer(id)
	if st.Status.State != "CONTAINER_CREATED" {
		t.Fatalf("after create: %s", st.Status.State)
	}
	if args := st.Info.RuntimeSpec.Process.Args; len(args) != 3 || args[2] != "echo hello; echo oops >&2; exec sleep 600" {
		t.Errorf("verbose info's runtimeSpec.process.args = %q, want the container's command", args)
	}
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	if out := h.Crictl("ps", "-q"); !strings.Contains(out, id) {
		t.Errorf("crictl ps -q does not list %s: %q", id, out)
	}
	eventually(t, 10*time.Second, "log lines", func() (bool, string) {
		out, errOut, _ := h.crictlRaw("logs", id)
		return strings.Contains(out, "hello") && strings.Contains(errOut, "oops"), out + errOut
	})
	logFile, err := os.ReadFile(filepath.Join(h.Dir, "logs", "echo.log"))
	if err != nil || !strings.Contains(string(logFile), " stdout F hello\n") || !strings.Contains(string(logFile), " stderr F oops\n") {
		t.Errorf("CRI log file: %v\n%s", err, logFile)
	}
	h.Crictl("stop", "-t", "5", id)
	st = h.InspectContainer(id)
	if st.Status.State != "CONTAINER_EXITED" || st.Status.ExitCode != 143 || st.Status.Reason != "Error" {
		t.Errorf("after stop: %+v, want EXITED 143 Error (SIGTERM)", st.Status)
	}
	h.Crictl("stop", id) // idempotent

	exit3 := h.CreateContainer(podID, shellContainer("exit3", "exit 3"), pod)
	h.Crictl("start", exit3)
	st = h.waitContainerState(exit3, "CONTAINER_EXITED")
	if st.Status.ExitCode != 3 || st.Status.Reason != "Error" {
		t.Errorf("exit 3: %+v", st.Status)
	}
	ok := h.CreateContainer(podID, shellContainer("ok", "true"), pod)
	h.Crictl("start", ok)
	if st := h.waitContainerState(ok, "CONTAINER_EXITED"); st.Status.Reason != "Completed" {
		t.Errorf("exit 0: %+v", st.Status)
	}
	for _, c := range []string{id, exit3, ok} {
		h.Crictl("rm", c)
	}
	if out := h.Crictl("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after rm: %q", out)
	}
	// The records, specs and volume dirs of removed containers go with them.
	if left, _ := filepath.Glob(filepath.Join(h.RootDir, "pods", podID, "containers", "*")); len(left) != 0 {
		t.Errorf("files left in the pod's containers dir after rm: %q", left)
	}
	h.Crictl("stopp", podID)
	h.Crictl("rmp", podID)
}

// TestContainerSharesPodNamespaces is the seeds' experiment: a web server
// and a client in one pod see the same eth0, reach each other on
// localhost, share net/ipc/uts with the pause process and have their own
// mount and PID namespaces.
func TestContainerSharesPodNamespaces(t *testing.T) {
	h, podID, pod := containerPod(t)
	web := shellContainer("web", "mkdir -p /www && echo crib-says-hi > /www/index.html && exec httpd -f -p 80 -h /www")
	web["linux"] = map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}}
	client := shellContainer("client", "while true; do wget -qO- http://localhost/ || echo fail; sleep 0.2; done")
	client["linux"] = web["linux"]
	webID := h.CreateContainer(podID, web, pod)
	clientID := h.CreateContainer(podID, client, pod)
	h.Crictl("start", webID)
	h.Crictl("start", clientID)
	eventually(t, 15*time.Second, "client reaches the server on localhost", func() (bool, string) {
		data, _ := os.ReadFile(filepath.Join(h.Dir, "logs", "client.log"))
		return strings.Contains(string(data), "crib-says-hi"), string(data)
	})
	pause := h.PausePID(podID)
	pids := map[string]int{}
	for name, id := range map[string]string{"web": webID, "client": clientID} {
		var st ContainerStatus
		h.CrictlJSON(&st, "inspect", "-o", "json", id)
		if st.Info.Pid <= 0 {
			t.Fatalf("%s: no pid in verbose info", name)
		}
		pids[name] = st.Info.Pid
	}
	for _, kind := range []string{"net", "ipc", "uts"} {
		want := procNS(t, pause, kind)
		for name, pid := range pids {
			if got := procNS(t, pid, kind); got != want {
				t.Errorf("%s %s namespace %s, pause has %s", name, kind, got, want)
			}
		}
	}
	for _, kind := range []string{"mnt", "pid"} {
		if procNS(t, pids["web"], kind) == procNS(t, pids["client"], kind) || procNS(t, pids["web"], kind) == procNS(t, pause, kind) {
			t.Errorf("%s namespace shared between containers or with pause", kind)
		}
	}
	// Same eth0 in both: same address and MAC.
	var links []string
	for _, pid := range []int{pids["web"], pids["client"]} {
		out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "ip", "-o", "addr", "show", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("nsenter: %v: %s", err, out)
		}
		links = append(links, string(out))
	}
	if links[0] != links[1] || !strings.Contains(links[0], "inet ") {
		t.Errorf("eth0 differs between the containers:\n%s\n%s", links[0], links[1])
	}
	h.Crictl("rmp", "-f", podID)
}

// TestContainerSurvivesRestart: containers run and log through a kill -9 of
// cribd; one that exits while cribd is down shows its exit code after.
func TestContainerSurvivesRestart(t *testing.T) {
	h, podID, pod := containerPod(t)
	counter := h.CreateContainer(podID, shellContainer("counter", "i=0; while true; do echo n=$i; i=$((i+1)); sleep 0.1; done"), pod)
	h.Crictl("start", counter)
	exiter := h.CreateContainer(podID, shellContainer("exiter", "sleep 1; exit 3"), pod)
	h.Crictl("start", exiter)
	pidBefore := h.InspectContainer(counter).Info.Pid

	h.Kill()
	// While cribd is down, the exiter exits: its shim records it.
	statePath := filepath.Join(h.RunDir, "pods", podID, "containers", exiter, "state.json")
	eventually(t, 10*time.Second, "exiter exits while cribd is down", func() (bool, string) {
		data, _ := os.ReadFile(statePath)
		return strings.Contains(string(data), `"stopped"`), string(data)
	})
	h.Start()

	st := h.InspectContainer(counter)
	if st.Status.State != "CONTAINER_RUNNING" || st.Info.Pid != pidBefore {
		t.Errorf("counter after restart: %s pid %d, want RUNNING pid %d", st.Status.State, st.Info.Pid, pidBefore)
	}
	if st := h.waitContainerState(exiter, "CONTAINER_EXITED"); st.Status.ExitCode != 3 {
		t.Errorf("exiter: exit code %d, want 3", st.Status.ExitCode)
	}
	h.Crictl("stop", "-t", "0", counter)
	data, err := os.ReadFile(filepath.Join(h.Dir, "logs", "counter.log"))
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		i := strings.Index(line, "n=")
		if i < 0 {
			continue
		}
		n, _ := strconv.Atoi(line[i+2:])
		if n != next {
			t.Fatalf("log line %q: want n=%d (every number once, in order)", line, next)
		}
		next++
	}
	if next < 5 {
		t.Errorf("only %d lines logged across the restart", next)
	}
	h.Crictl("rmp", "-f", podID)
}

// TestContainerOOM: a process far over its 32 MiB limit is OOMKilled.
func TestContainerOOM(t *testing.T) {
	h, podID, pod := containerPod(t)
	cfg := shellContainer("hog", "x=a; while true; do x=$x$x; done")
	cfg["linux"] = map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 32 << 20}}
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	st := h.waitContainerState(id, "CONTAINER_EXITED")
	if st.Status.ExitCode != 137 || st.Status.Reason != "OOMKilled" {
		t.Errorf("hog: %+v, want 137 OOMKilled", st.Status)
	}
	h.Crictl("rmp", "-f", podID)
}

// TestContainerBadInput: each bad request gets a clear error and leaves
// nothing behind.
// badContainerConfig is a valid busybox container config that mut spoils.
func badContainerConfig(mut func(*runtimeapi.ContainerConfig)) *runtimeapi.ContainerConfig {
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "bad"},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		Command:  []string{"true"},
	}
	mut(cfg)
	return cfg
}

func TestContainerBadInput(t *testing.T) {
	h, podID, pod := containerPod(t)
	c := h.client()
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "x", Namespace: "y", Uid: "z"},
		LogDirectory: pod["log_directory"].(string),
	}
	base := badContainerConfig
	tests := []struct {
		name string
		pod  string
		cfg  *runtimeapi.ContainerConfig
		code codes.Code
		want string
	}{
		{"unknown pod", strings.Repeat("0", 64), base(func(*runtimeapi.ContainerConfig) {}), codes.NotFound, "not found"},
		{"image not in store", podID, base(func(c *runtimeapi.ContainerConfig) { c.Image.Image = "docker.io/library/nothere:1" }), codes.NotFound, "nothere"},
		{"missing host path", podID, base(func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/nonexistent/crib-it"}}
		}), codes.InvalidArgument, "/nonexistent/crib-it"},
		{"log path escapes", podID, base(func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../escape.log" }), codes.InvalidArgument, "log_path"},
		{"no name", podID, base(func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "" }), codes.InvalidArgument, "metadata.name"},
	}
	for _, tc := range tests {
		_, err := c.CreateContainer(ctx30(t), &runtimeapi.CreateContainerRequest{PodSandboxId: tc.pod, Config: tc.cfg, SandboxConfig: podCfg})
		wantCode(t, tc.name, err, tc.code, tc.want)
	}
	if out := h.Crictl("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("bad requests left containers: %q", out)
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "escape.log")); err == nil {
		t.Errorf("escaping log path was created")
	}
	h.Crictl("rmp", "-f", podID)
}

// TestContainerExecSync: output and exit codes come back; a timeout kills
// the process promptly and leaves nothing running.
func TestContainerExecSync(t *testing.T) {
	h, podID, pod := containerPod(t)
	id := h.CreateContainer(podID, shellContainer("exec", "exec sleep 600"), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	c := h.client()

	resp, err := c.ExecSync(ctx30(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Stdout) != "out\n" || string(resp.Stderr) != "err\n" || resp.ExitCode != 7 {
		t.Errorf("exec: stdout %q stderr %q code %d", resp.Stdout, resp.Stderr, resp.ExitCode)
	}
	if out := h.Crictl("exec", "-s", id, "echo", "via-crictl"); strings.TrimSpace(out) != "via-crictl" {
		t.Errorf("crictl exec -s printed %q", out)
	}

	begin := time.Now()
	_, err = c.ExecSync(ctx30(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "10"}, Timeout: 1})
	took := time.Since(begin)
	wantCode(t, "exec with timeout", err, codes.DeadlineExceeded, "timed out")
	if took > 4*time.Second {
		t.Errorf("exec with a 1s timeout returned after %s", took)
	}
	resp, err = c.ExecSync(ctx30(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "ps | grep -v grep | grep -c 'sleep 10' || true"}})
	if err != nil || strings.TrimSpace(string(resp.Stdout)) != "0" {
		t.Errorf("timed-out process still running: %v %q", err, resp.GetStdout())
	}
	_, err = c.ExecSync(ctx30(t), &runtimeapi.ExecSyncRequest{ContainerId: strings.Repeat("a", 64), Cmd: []string{"true"}})
	wantCode(t, "exec in unknown container", err, codes.NotFound, "not found")
	h.Crictl("rmp", "-f", podID)
}

// TestContainerLogRotation: kubelet renames the log, then calls
// ReopenContainerLog; new lines land in the new file and none is lost.
func TestContainerLogRotation(t *testing.T) {
	h, podID, pod := containerPod(t)
	id := h.CreateContainer(podID, shellContainer("rot", "i=0; while true; do echo n=$i; i=$((i+1)); sleep 0.02; done"), pod)
	h.Crictl("start", id)
	logPath := filepath.Join(h.Dir, "logs", "rot.log")
	eventually(t, 10*time.Second, "first lines", func() (bool, string) {
		data, _ := os.ReadFile(logPath)
		return strings.Count(string(data), "\n") > 10, string(data)
	})
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client().ReopenContainerLog(ctx30(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "lines in the new file", func() (bool, string) {
		data, _ := os.ReadFile(logPath)
		return strings.Count(string(data), "\n") > 10, string(data)
	})
	h.Crictl("stop", "-t", "0", id)
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	next := 0
	for _, line := range strings.Split(strings.TrimSpace(string(old)+string(cur)), "\n") {
		i := strings.Index(line, "n=")
		if i < 0 {
			continue
		}
		if n, _ := strconv.Atoi(line[i+2:]); n != next {
			t.Fatalf("line %q: want n=%d (no line lost or repeated across the rotation)", line, next)
		}
		next++
	}
	h.Crictl("rmp", "-f", podID)
}

// TestContainerSignalsDefault: a container's process and an exec'd process
// start with no signal ignored. The shim must not hand down its own
// ignores through execve: a container that inherits SIGHUP ignored cannot
// be told to reload, one with SIGPIPE ignored behaves differently on a
// closed pipe.
func TestContainerSignalsDefault(t *testing.T) {
	h, podID, pod := containerPod(t)
	cfg := shellContainer("sigs", "")
	cfg["command"] = []string{"grep", "SigIgn", "/proc/self/status"}
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_EXITED")
	out := h.Crictl("logs", id)
	if !strings.Contains(out, "SigIgn:\t0000000000000000") {
		t.Errorf("container's SigIgn = %q, want none ignored", out)
	}

	sleeper := h.CreateContainer(podID, shellContainer("sleeper", "exec sleep 600"), pod)
	h.Crictl("start", sleeper)
	h.waitContainerState(sleeper, "CONTAINER_RUNNING")
	if out := h.Crictl("exec", "-s", sleeper, "grep", "SigIgn", "/proc/self/status"); !strings.Contains(out, "SigIgn:\t0000000000000000") {
		t.Errorf("exec'd process's SigIgn = %q, want none ignored", out)
	}
	h.Crictl("stop", "-t", "1", sleeper)
	h.Crictl("rm", id, sleeper)
	h.Crictl("stopp", podID)
	h.Crictl("rmp", podID)
}
