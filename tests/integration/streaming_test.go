//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/tests/harness"
)

// crictlCmd returns a crictl command against this cribd, for tests that
// need its stdin or run it in the background.
func (h *Harness) crictlCmd(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{
		"--config", filepath.Join(h.Dir, "crictl.yaml"),
		"--runtime-endpoint", "unix://" + h.Socket,
		"--image-endpoint", "unix://" + h.Socket,
		"--timeout", "30s",
	}, args...)
	return exec.CommandContext(ctx, crictlPath(), full...)
}

// runningShell starts a busybox container running script in a new pod.
func runningShell(t *testing.T, script string) (h *Harness, podID, id string) {
	t.Helper()
	h, podID, pod := containerPod(t)
	id = h.CreateContainer(podID, shellContainer("stream", script), pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	return h, podID, id
}

// TestStreamExec: crictl exec through the streaming server, with output
// split between stdout and stderr, the exit code propagated, stdin, a
// terminal, and the errors of the CRI call.
func TestStreamExec(t *testing.T) {
	h, podID, id := runningShell(t, "exec sleep 600")
	c := h.client()

	resp, err := c.Exec(ctx30(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "http://127.0.0.1:") || !strings.Contains(resp.Url, "/exec/") {
		t.Errorf("Exec URL %q is not an absolute loopback URL", resp.Url)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := h.crictlCmd(ctx, "exec", id, "sh", "-c", "echo out; echo err >&2; exit 3")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// crictl exits 1 after a streaming exec failed, naming the code.
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || !strings.Contains(stderr.String(), "exit code 3") {
		t.Errorf("crictl exec: %v, want a failure naming exit code 3 (stderr %q)", err, stderr.String())
	}
	if stdout.String() != "out\n" || !strings.HasPrefix(stderr.String(), "err\n") {
		t.Errorf("crictl exec: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	cmd = h.crictlCmd(ctx, "exec", "-i", id, "cat")
	cmd.Stdin = strings.NewReader("hi\nthere\n")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.String() != "hi\nthere\n" {
		t.Errorf("crictl exec -i cat: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}

	// A terminal: script(1) gives crictl one, so it asks for a TTY. crictl
	// sends the terminal's size as a resize after the process started, so
	// the process polls (bounded) until the size has arrived: under load
	// its first stty ran before it and failed.
	var quoted []string
	poll := `tty; i=0; while [ "$(stty size 2>/dev/null)" != "27 91" ] && [ $i -lt 300 ]; do i=$((i+1)); sleep 0.1; done; stty size; exit 5`
	for _, a := range h.crictlCmd(ctx, "exec", "-it", id, "sh", "-c", poll).Args {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	crictl := strings.Join(quoted, " ")
	cmd = exec.CommandContext(ctx, "script", "-qec", "stty cols 91 rows 27; "+crictl, "/dev/null")
	out, err := cmd.CombinedOutput()
	// With a terminal crictl exits 1 and reports the code.
	if err == nil || !strings.Contains(string(out), "exit code 5") {
		t.Errorf("crictl exec -it: %v, want exit code 5; output %q", err, out)
	}
	if !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "27 91") {
		t.Errorf("crictl exec -it: output %q lacks the terminal's name and size", out)
	}

	_, err = c.Exec(ctx30(t), &runtimeapi.ExecRequest{ContainerId: strings.Repeat("a", 64), Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "exec in unknown container", err, codes.NotFound, "not found")
	_, err = c.Exec(ctx30(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}})
	wantCode(t, "exec without streams", err, codes.InvalidArgument, "must be set")

	h.Crictl("stop", id)
	_, err = c.Exec(ctx30(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "exec in stopped container", err, codes.FailedPrecondition, "not running")
	h.Crictl("rmp", "-f", podID)
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int { return harness.FreePort(t) }

// TestStreamPortForward: crictl port-forward reaches a TCP echo server
// listening on the pod's loopback, inside its network namespace.
func TestStreamPortForward(t *testing.T) {
	h, podID, id := runningShell(t, "exec nc -ll -p 8080 -e cat")
	c := h.client()
	// crictl gives up at the first failed connection: start it once the
	// server listens.
	eventually(t, 10*time.Second, "nc listening", func() (bool, string) {
		r, err := c.ExecSync(ctx30(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "netstat -ltn | grep -q ':8080 '"}})
		return err == nil && r.ExitCode == 0, fmt.Sprintf("%v %v", err, r)
	})

	resp, err := c.PortForward(ctx30(t), &runtimeapi.PortForwardRequest{PodSandboxId: podID, Port: []int32{8080}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "http://127.0.0.1:") || !strings.Contains(resp.Url, "/portforward/") {
		t.Errorf("PortForward URL %q is not an absolute loopback URL", resp.Url)
	}
	_, err = c.PortForward(ctx30(t), &runtimeapi.PortForwardRequest{PodSandboxId: strings.Repeat("b", 64), Port: []int32{80}})
	wantCode(t, "port-forward to unknown pod", err, codes.NotFound, "not found")

	local := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	pf := h.crictlCmd(ctx, "port-forward", podID, fmt.Sprintf("%d:8080", local))
	var pfOut bytes.Buffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	pfDone := make(chan struct{})
	go func() { _ = pf.Wait(); close(pfDone) }()
	t.Cleanup(func() {
		cancel() // kills crictl
		<-pfDone
	})

	echo := func(msg string) (string, error) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", local), 2*time.Second)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(msg + "\n")); err != nil {
			return "", err
		}
		return bufio.NewReader(conn).ReadString('\n')
	}
	eventually(t, 20*time.Second, "echo through port-forward", func() (bool, string) {
		if isClosed(pfDone) {
			t.Fatalf("crictl port-forward exited: %s", pfOut.String())
		}
		got, err := echo("ping")
		return err == nil && got == "ping\n", fmt.Sprintf("got %q, %v", got, err)
	})
	// A second connection works too (a new stream over the same session).
	eventually(t, 10*time.Second, "second echo", func() (bool, string) {
		got, err := echo("pong")
		return err == nil && got == "pong\n", fmt.Sprintf("got %q, %v", got, err)
	})
	cancel()
	<-pfDone
	h.Crictl("rmp", "-f", podID)
}
