//go:build integration

package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// shimDeathDeadline is how soon after a shim's death cribd must report it.
const shimDeathDeadline = 2 * time.Second

// killShim kills pod id's crib-shim with SIGKILL and returns its PID.
func (h *Harness) killShim(id string) int {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.RunDir, "pods", id, "shim.pid"))
	if err != nil {
		h.t.Fatal(err)
	}
	shim, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if processName(shim) != "crib-shim" {
		h.t.Fatalf("shim.pid names %d, a %q", shim, processName(shim))
	}
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		h.t.Fatal(err)
	}
	return shim
}

// cgroupProcs lists the processes in the cgroup of container (or pod) id,
// in every hierarchy.
func (h *Harness) cgroupProcs(id string) []int {
	h.t.Helper()
	files, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(h.CgroupParent, "/"), id, "cgroup.procs"))
	files2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", strings.TrimPrefix(h.CgroupParent, "/"), id, "cgroup.procs"))
	seen := map[int]bool{}
	var out []int
	for _, f := range append(files, files2...) {
		data, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(s); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	return out
}

// shimDiedReported reports whether the pod reads NOTREADY and each of
// ctrs EXITED with code 255 and reason ShimDied, asking cribd over gRPC
// (crictl's start-up would eat most of the deadline on a loaded machine).
func (h *Harness) shimDiedReported(c runtimeapi.RuntimeServiceClient, pod string, ctrs ...string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), shimDeathDeadline)
	defer cancel()
	ps, err := c.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod})
	if err != nil {
		return false, err.Error()
	}
	if s := ps.GetStatus().GetState(); s != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		return false, "pod " + s.String()
	}
	for _, id := range ctrs {
		cs, err := c.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			return false, err.Error()
		}
		st := cs.GetStatus()
		if st.GetState() != runtimeapi.ContainerState_CONTAINER_EXITED || st.GetExitCode() != 255 || st.GetReason() != "ShimDied" {
			return false, "container " + id[:12] + ": " + st.GetState().String() + " exit " + strconv.Itoa(int(st.GetExitCode())) + " reason " + st.GetReason()
		}
	}
	return true, ""
}

// TestShimDeathReported: within 2 s of a kill -9 of a pod's shim, the pod
// reads NOTREADY and its containers (running, quiet or logging, and
// created) EXITED 255 with
// reason ShimDied, their processes are killed, events say so, calls that
// need the shim fail with FailedPrecondition instead of Unavailable, and
// StopPodSandbox and RemovePodSandbox leave nothing behind.
func TestShimDeathReported(t *testing.T) {
	h, podID, pod := containerPod(t)
	c := h.client()
	running := h.CreateContainer(podID, shellContainer("running", "sleep 600 & exec sleep 600"), pod)
	h.Crictl("start", running)
	// Its stdout pipe has no reader once the shim is gone: it dies of
	// SIGPIPE at its next line, before or after cribd notices.
	talker := h.CreateContainer(podID, shellContainer("talker", "while true; do echo hi; sleep 0.1; done"), pod)
	h.Crictl("start", talker)
	created := h.CreateContainer(podID, shellContainer("created", "exec sleep 600"), pod)
	// Every process of the pod: the inits, the background sleep, pause.
	var procs []int
	for _, id := range []string{running, talker, created, podID} {
		procs = append(procs, h.cgroupProcs(id)...)
	}
	if len(procs) < 5 {
		t.Fatalf("the pod's cgroups hold %v, want at least 5 processes", procs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := c.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *runtimeapi.ContainerEventResponse, 16)
	go func() {
		defer close(events)
		for {
			ev, err := stream.Recv()
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	eventually(t, 10*time.Second, "event stream open", func() (bool, string) {
		return containsLine(h.Log(), "GetContainerEvents"), ""
	})

	h.killShim(podID)
	killed := time.Now()
	eventually(t, shimDeathDeadline, "pod NOTREADY and containers EXITED 255 ShimDied", func() (bool, string) {
		return h.shimDiedReported(c, podID, running, talker, created)
	})
	t.Logf("reported %v after the kill", time.Since(killed).Round(time.Millisecond))
	for _, pid := range procs {
		eventually(t, 5*time.Second, "process "+strconv.Itoa(pid)+" killed", func() (bool, string) {
			_, state := procStat(pid)
			return state == "" || state == "Z" || state == "X", "state " + state
		})
	}

	// Events: both containers stopped, and the pod, NOTREADY.
	want := map[string]bool{running: false, talker: false, created: false, podID: false}
	timeout := time.After(10 * time.Second)
	for done := 0; done < len(want); {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event stream ended; still waiting for %v", want)
			}
			id := ev.GetContainerId()
			if seen, ok := want[id]; !ok || seen || ev.GetContainerEventType() != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
				continue
			}
			if s := ev.GetPodSandboxStatus().GetState(); s != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
				t.Errorf("stopped event of %s carries pod state %s", id[:12], s)
			}
			want[id] = true
			done++
		case <-timeout:
			t.Fatalf("no CONTAINER_STOPPED_EVENT within 10s for some of %v (true: seen)", want)
		}
	}

	// Calls that need the shim say what is wrong.
	_, err = c.ExecSync(ctx30(t), &runtimeapi.ExecSyncRequest{ContainerId: running, Cmd: []string{"true"}})
	wantCode(t, "ExecSync", err, codes.FailedPrecondition, "not running")
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "x", Namespace: "y", Uid: "z"},
		LogDirectory: pod["log_directory"].(string),
	}
	_, err = c.CreateContainer(ctx30(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: podCfg, Config: badContainerConfig(func(*runtimeapi.ContainerConfig) {}),
	})
	wantCode(t, "CreateContainer", err, codes.FailedPrecondition, "not ready")

	// kubelet's way out: remove the containers, stop and remove the pod.
	// The harness's leak check then fails the test on anything left.
	h.Crictl("rm", created)
	h.Crictl("stopp", podID)
	h.Crictl("rmp", podID)
	if !h.Running() {
		t.Fatalf("cribd died:\n%s", tail(h.Log(), 40))
	}
}

// TestShimDeathWhileCribdDown: a shim killed while cribd is down is found
// at cribd's start: the pod reads NOTREADY and its container EXITED 255
// ShimDied from the first call on, its processes are killed, and the pod
// is removed without leaks.
func TestShimDeathWhileCribdDown(t *testing.T) {
	h, podID, pod := containerPod(t)
	running := h.CreateContainer(podID, shellContainer("running", "exec sleep 600"), pod)
	h.Crictl("start", running)
	ctrPID := h.InspectContainer(running).Info.Pid

	h.Kill()
	shim := h.killShim(podID)
	eventually(t, 10*time.Second, "shim gone", func() (bool, string) {
		_, state := procStat(shim)
		return state == "" || state == "Z" || state == "X", "state " + state
	})
	h.Start()
	if ok, why := h.shimDiedReported(h.client(), podID, running); !ok {
		t.Fatalf("after restart: %s", why)
	}
	eventually(t, 5*time.Second, "container process killed", func() (bool, string) {
		_, state := procStat(ctrPID)
		return state == "" || state == "Z" || state == "X", "state " + state
	})
	h.Crictl("rmp", "-f", podID)
}
