//go:build integration

package integration

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// syncBuffer collects a command's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// attachCmd is a running `crictl attach` (or another command) whose
// input the test writes and whose output it watches.
type attachCmd struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   syncBuffer
	done  chan error
}

func startAttach(t *testing.T, cmd *exec.Cmd) *attachCmd {
	t.Helper()
	a := &attachCmd{t: t, cmd: cmd, done: make(chan error, 1)}
	var err error
	if a.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = &a.out, &a.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- cmd.Wait() }()
	t.Cleanup(func() {
		a.stdin.Close()
		_ = cmd.Process.Kill()
	})
	return a
}

func (a *attachCmd) write(s string) {
	a.t.Helper()
	if _, err := io.WriteString(a.stdin, s); err != nil {
		a.t.Fatalf("write %q to %s: %v (output %q)", s, a.cmd.Args[0], err, a.out.String())
	}
}

// waitOutput waits until the output contains want.
func (a *attachCmd) waitOutput(want string) {
	a.t.Helper()
	eventually(a.t, 20*time.Second, "output "+want, func() (bool, string) {
		return strings.Contains(a.out.String(), want), a.out.String()
	})
}

// wait waits for the command to exit and returns its error.
func (a *attachCmd) wait() error {
	a.t.Helper()
	select {
	case err := <-a.done:
		return err
	case <-time.After(30 * time.Second):
		a.t.Fatalf("%s still running after 30s; output %q", a.cmd.Args[0], a.out.String())
		return nil
	}
}

// readLog returns a container's CRI log.
func readLog(t *testing.T, h *Harness, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(h.Dir, "logs", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestAttachStdin: crictl attach -i to a container with stdin reaches its
// process (cat echoes), its output comes back live and lands in the log;
// the container's stdin outlives a session and a cribd restart; the CRI
// call's errors.
func TestAttachStdin(t *testing.T) {
	h, podID, pod := containerPod(t)
	cfg := shellContainer("cat", "exec cat")
	cfg["stdin"] = true
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	noStdin := h.CreateContainer(podID, shellContainer("nostdin", "exec sleep 600"), pod)
	h.Crictl("start", noStdin)
	h.waitContainerState(noStdin, "CONTAINER_RUNNING")

	c := h.client()
	resp, err := c.Attach(ctx30(t), &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "http://127.0.0.1:") || !strings.Contains(resp.Url, "/attach/") {
		t.Errorf("Attach URL %q is not an absolute loopback URL", resp.Url)
	}
	_, err = c.Attach(ctx30(t), &runtimeapi.AttachRequest{ContainerId: strings.Repeat("a", 64), Stdout: true})
	wantCode(t, "attach to unknown container", err, codes.NotFound, "not found")
	_, err = c.Attach(ctx30(t), &runtimeapi.AttachRequest{ContainerId: noStdin, Stdin: true, Stdout: true})
	wantCode(t, "attach stdin of a container without stdin", err, codes.FailedPrecondition, "not created with stdin")
	_, err = c.Attach(ctx30(t), &runtimeapi.AttachRequest{ContainerId: id})
	wantCode(t, "attach without streams", err, codes.InvalidArgument, "must be set")

	// One session: what it sends comes back; closing its input ends it
	// (the container has no stdin_once), and the container runs on.
	echo := func(msg string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		a := startAttach(t, h.crictlCmd(ctx, "attach", "-i", id))
		a.write(msg + "\n")
		a.waitOutput(msg + "\n")
		a.stdin.Close()
		if err := a.wait(); err != nil {
			t.Errorf("crictl attach -i: %v; output %q", err, a.out.String())
		}
	}
	echo("hello")
	h.Kill()
	h.Start()
	echo("after restart")
	if st := h.InspectContainer(id); st.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("after two sessions: %s, want running", st.Status.State)
	}
	log := readLog(t, h, "cat")
	for _, want := range []string{" stdout F hello\n", " stdout F after restart\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log %q lacks %q", log, want)
		}
	}

	h.Crictl("stop", "-t", "0", id)
	_, err = h.client().Attach(ctx30(t), &runtimeapi.AttachRequest{ContainerId: id, Stdout: true})
	wantCode(t, "attach to a stopped container", err, codes.FailedPrecondition, "not running")
	h.Crictl("rmp", "-f", podID)
}

// TestAttachStdinOnce: a stdin_once container's stdin closes when the
// first session's input ends; the session keeps the output until the
// container exits (as critest's attach spec expects).
func TestAttachStdinOnce(t *testing.T) {
	h, podID, pod := containerPod(t)
	cfg := shellContainer("once", "")
	cfg["command"] = []string{"/bin/sh"}
	cfg["stdin"], cfg["stdin_once"] = true, true
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startAttach(t, h.crictlCmd(ctx, "attach", "-i", id))
	a.write("echo one; echo two >&2\n")
	a.waitOutput("one\n")
	a.waitOutput("two\n")
	// The shell reads EOF, exits, and the session ends with the output.
	a.write("sleep 0.5; echo bye\n")
	a.stdin.Close()
	if err := a.wait(); err != nil {
		t.Errorf("crictl attach -i: %v; output %q", err, a.out.String())
	}
	if !strings.Contains(a.out.String(), "bye\n") {
		t.Errorf("session output %q lacks what the shell wrote after its stdin closed", a.out.String())
	}
	if st := h.waitContainerState(id, "CONTAINER_EXITED"); st.Status.ExitCode != 0 {
		t.Errorf("shell exit code %d, want 0", st.Status.ExitCode)
	}
	log := readLog(t, h, "once")
	for _, want := range []string{" stdout F one\n", " stderr F two\n", " stdout F bye\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log %q lacks %q", log, want)
		}
	}
	h.Crictl("rmp", "-f", podID)
}

// TestAttachTty: a container with a terminal logs the terminal's output as
// stdout lines; crictl attach -it drives its shell through the terminal,
// and the terminal takes the client's size.
func TestAttachTty(t *testing.T) {
	h, podID, pod := containerPod(t)
	cfg := shellContainer("tty", "tty; exec sh")
	cfg["tty"], cfg["stdin"] = true, true
	id := h.CreateContainer(podID, cfg, pod)
	h.Crictl("start", id)
	h.waitContainerState(id, "CONTAINER_RUNNING")
	eventually(t, 10*time.Second, "the terminal's name in the log", func() (bool, string) {
		log := readLog(t, h, "tty")
		return strings.Contains(log, " stdout F /dev/pts/0\n"), log
	})

	_, err := h.client().Attach(ctx30(t), &runtimeapi.AttachRequest{ContainerId: id, Tty: true, Stdout: true, Stderr: true})
	wantCode(t, "attach with tty and stderr", err, codes.InvalidArgument, "tty and stderr")

	// script(1) gives crictl a terminal of a known size, so it asks for a
	// TTY and sends that size.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var quoted []string
	for _, arg := range h.crictlCmd(ctx, "attach", "-it", id).Args {
		quoted = append(quoted, "'"+strings.ReplaceAll(arg, "'", `'\''`)+"'")
	}
	a := startAttach(t, exec.CommandContext(ctx, "script", "-qec", "stty cols 91 rows 27; "+strings.Join(quoted, " "), "/dev/null"))
	// The size may arrive after the first command runs: ask again every
	// half second until it shows.
	polls := 0
	eventually(t, 20*time.Second, "the client's terminal size in the container", func() (bool, string) {
		if polls%5 == 0 {
			a.write("stty size\n")
		}
		polls++
		return strings.Contains(a.out.String(), "27 91"), a.out.String()
	})
	a.write("exit 4\n")
	if st := h.waitContainerState(id, "CONTAINER_EXITED"); st.Status.ExitCode != 4 {
		t.Errorf("shell exit code %d, want 4", st.Status.ExitCode)
	}
	_ = a.wait() // crictl ends with the container's output
	if log := readLog(t, h, "tty"); !strings.Contains(log, " stdout F 27 91\n") || strings.Contains(log, "\r\n") {
		t.Errorf("log %q: want the terminal's output as stdout lines without \\r", log)
	}
	h.Crictl("rmp", "-f", podID)
}
