//go:build node

package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The scenarios drive what a user does through crictl, and check what they
// then see through a CRI client of their own: in the emulated guest a
// crictl start costs 2-5 s (and /bin/true 170 ms), a gRPC call
// milliseconds; a scenario repeats its checks many times.

// runtimeClient is a CRI runtime client on crib.service's socket, closed
// with the test.
func runtimeClient(t testing.TB) runtimeapi.RuntimeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+criSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// criCtx is a minute for one CRI call, as crictl's timeout in
// /etc/crictl.yaml.
func criCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// execIn runs cmd in container id (ExecSync, as crictl exec does) and
// returns its stdout, trimmed; a failure or a non-zero exit fails the
// test.
func execIn(t testing.TB, id string, cmd ...string) string {
	t.Helper()
	out, errOut, code, err := execRaw(t, id, cmd...)
	if err != nil || code != 0 {
		t.Fatalf("exec %s in %s: %v, exit %d, stderr %q", strings.Join(cmd, " "), id, err, code, errOut)
	}
	return strings.TrimSpace(out)
}

// execRaw runs cmd in container id and returns what it wrote and its exit
// code.
func execRaw(t testing.TB, id string, cmd ...string) (stdout, stderr string, code int32, err error) {
	resp, err := runtimeClient(t).ExecSync(criCtx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 60})
	if err != nil {
		return "", "", 0, err
	}
	return string(resp.GetStdout()), string(resp.GetStderr()), resp.GetExitCode(), nil
}

// infoPID is the pid crib reports in a container's ("inspect") or a pod's
// ("inspectp") verbose status info, as crictl inspect shows it.
func infoPID(t testing.TB, verb, id string) int {
	t.Helper()
	rt := runtimeClient(t)
	var info map[string]string
	switch verb {
	case "inspect":
		resp, err := rt.ContainerStatus(criCtx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
		if err != nil {
			t.Fatalf("ContainerStatus %s: %v", id, err)
		}
		info = resp.GetInfo()
	case "inspectp":
		resp, err := rt.PodSandboxStatus(criCtx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
		if err != nil {
			t.Fatalf("PodSandboxStatus %s: %v", id, err)
		}
		info = resp.GetInfo()
	default:
		t.Fatalf("infoPID: verb %q", verb)
	}
	var v struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(info["info"]), &v); err != nil || v.PID <= 0 {
		t.Fatalf("%s %s: no pid in info %q (%v)", verb, id, info["info"], err)
	}
	return v.PID
}

// removePod stops and removes a pod and its containers, as
// crictl rmp -f does.
func removePod(t testing.TB, pod string) {
	t.Helper()
	rt := runtimeClient(t)
	if _, err := rt.StopPodSandbox(criCtx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox %s: %v", pod, err)
	}
	if _, err := rt.RemovePodSandbox(criCtx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox %s: %v", pod, err)
	}
}

// removeContainer stops (at once) and removes a container.
func removeContainer(t testing.TB, id string) {
	t.Helper()
	rt := runtimeClient(t)
	if _, err := rt.StopContainer(criCtx(t), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StopContainer %s: %v", id, err)
	}
	if _, err := rt.RemoveContainer(criCtx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer %s: %v", id, err)
	}
}

// startContainer starts a created container.
func startContainer(t testing.TB, id string) {
	t.Helper()
	if _, err := runtimeClient(t).StartContainer(criCtx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer %s: %v", id, err)
	}
}
