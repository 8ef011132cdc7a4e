//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/internal/testcert"
)

// writeDropIns stops h's cribd, writes the drop-ins into crib.d next to
// its crib.toml and starts it again: the drop-ins are read at start.
func (h *Harness) writeDropIns(files map[string]string) {
	h.t.Helper()
	h.Stop()
	dir := filepath.Join(filepath.Dir(h.ConfigPath), "crib.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(h.expand(body)), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	h.Start()
}

// crictlInfo is the part of `crictl info` these tests read: the status
// and the info map's entries, which crictl puts beside it.
type crictlInfo struct {
	Config struct {
		Log struct {
			Level  string `json:"level"`
			Format string `json:"format"`
		} `json:"log"`
		Runtime struct {
			CgroupParent string `json:"cgroup_parent"`
			ShmSize      int64  `json:"shm_size"`
		} `json:"runtime"`
		Image struct {
			PinnedImages        []string `json:"pinned_images"`
			PullProgressTimeout string   `json:"pull_progress_timeout"`
		} `json:"image"`
		Streaming struct {
			IdleTimeout string `json:"idle_timeout"`
		} `json:"streaming"`
	} `json:"config"`
	ConfigSources struct {
		Files []string `json:"files"`
	} `json:"configSources"`
	Network struct {
		File    string   `json:"file"`
		Plugins []string `json:"plugins"`
	} `json:"network"`
	Streaming struct {
		URL         string `json:"url"`
		TLS         bool   `json:"tls"`
		IdleTimeout string `json:"idleTimeout"`
	} `json:"streaming"`
	Version struct {
		Crib string `json:"crib"`
	} `json:"version"`
}

// TestConfigDropIn: files in crib.d apply after crib.toml in name order,
// key by key, and crictl info shows the effective config; a bad drop-in
// stops cribd with an error naming the file and the key.
func TestConfigDropIn(t *testing.T) {
	h := start(t, Options{})
	var before crictlInfo
	h.CrictlJSON(&before, "info")
	if before.Config.Log.Level != "debug" || len(before.ConfigSources.Files) != 1 || before.ConfigSources.Files[0] != h.ConfigPath {
		t.Fatalf("crictl info before drop-ins: config.log %+v, configSources.files %q; want crib.toml's debug level from %s", before.Config.Log, before.ConfigSources.Files, h.ConfigPath)
	}
	if before.Network.File == "" || before.Version.Crib == "" {
		t.Errorf("crictl info: network %+v, version %+v; want the CNI config in use and crib's version", before.Network, before.Version)
	}

	// 20 overrides 10's timeout; [runtime] keeps crib.toml's
	// cgroup_parent. (Not log.level: the harness passes --log-level.)
	h.writeDropIns(map[string]string{
		"10-image.toml":   "[image]\npull_progress_timeout = \"1m\"\n[log]\nformat = \"json\"\n",
		"20-image.toml":   "[image]\npull_progress_timeout = \"2m\"\n[runtime]\nshm_size = 134217728\n",
		"30-pinned.toml":  "[image]\npinned_images = [\"registry.example/pinned:1\"]\n",
		"40-ignored.conf": "[image]\npull_progress_timeout = \"3m\"\n",
	})
	var after crictlInfo
	h.CrictlJSON(&after, "info")
	c := after.Config
	if c.Image.PullProgressTimeout != "2m" || c.Log.Format != "json" || c.Log.Level != "debug" {
		t.Errorf("config.image.pull_progress_timeout = %q, config.log = %+v; want 2m (20-image.toml over 10-image.toml), format json (10-image.toml), level debug (crib.toml)", c.Image.PullProgressTimeout, c.Log)
	}
	if c.Runtime.ShmSize != 128<<20 || c.Runtime.CgroupParent != before.Config.Runtime.CgroupParent {
		t.Errorf("config.runtime = %+v, want shm_size from the drop-in and cgroup_parent %q from crib.toml", c.Runtime, before.Config.Runtime.CgroupParent)
	}
	if len(c.Image.PinnedImages) != 1 || c.Image.PinnedImages[0] != "registry.example/pinned:1" {
		t.Errorf("config.image.pinned_images = %q", c.Image.PinnedImages)
	}
	dir := filepath.Join(filepath.Dir(h.ConfigPath), "crib.d")
	wantFiles := []string{h.ConfigPath, filepath.Join(dir, "10-image.toml"), filepath.Join(dir, "20-image.toml"), filepath.Join(dir, "30-pinned.toml")}
	if strings.Join(after.ConfigSources.Files, " ") != strings.Join(wantFiles, " ") {
		t.Errorf("configSources.files = %q, want %q", after.ConfigSources.Files, wantFiles)
	}
	// Status without verbose carries no info map (kubelet's every-5s call).
	st, err := h.client().Status(ctx30(t), &runtimeapi.StatusRequest{})
	if err != nil || len(st.Info) != 0 {
		t.Errorf("Status(verbose=false): %v, info %v; want no info", err, st.GetInfo())
	}

	// A bad value in a drop-in: cribd refuses to start, naming both.
	bad := filepath.Join(dir, "50-bad.toml")
	if err := os.WriteFile(bad, []byte("[streaming]\nidle_timeout = \"forever\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(binDir(), "cribd"), "--config", h.ConfigPath, "--print-config").CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad) || !strings.Contains(string(out), `"streaming.idle_timeout"`) {
		t.Errorf("cribd with %s: %v, output %q; want a failure naming the file and streaming.idle_timeout", bad, err, out)
	}
	if err := os.WriteFile(bad, []byte("[streaming]\nidle_timout = \"1s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(filepath.Join(binDir(), "cribd"), "--config", h.ConfigPath, "--print-config").CombinedOutput()
	if err == nil || !strings.Contains(string(out), bad) || !strings.Contains(string(out), `unknown key "streaming.idle_timout"`) {
		t.Errorf("cribd with %s: %v, output %q; want a failure naming the file and the unknown key", bad, err, out)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
}

// TestStreamTLS: with a certificate and key the streaming server speaks
// HTTPS, its URLs say https, and crictl exec and port-forward work over it
// (crictl does not verify the server without --tls-ca). With a client CA,
// only a client with a certificate it signed is served.
func TestStreamTLS(t *testing.T) {
	h, podID, id := runningShell(t, "exec nc -ll -p 8080 -e cat")
	certFile, keyFile, _ := testcert.Write(t, h.Dir, "streaming")
	tlsConf := "[streaming]\ntls_cert_file = \"" + certFile + "\"\ntls_key_file = \"" + keyFile + "\"\n"
	h.writeDropIns(map[string]string{"50-tls.toml": tlsConf})
	h.waitContainerState(id, "CONTAINER_RUNNING")

	resp, err := h.client().Exec(ctx30(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "https://127.0.0.1:") {
		t.Errorf("Exec URL %q, want https", resp.Url)
	}
	var info crictlInfo
	h.CrictlJSON(&info, "info")
	if !info.Streaming.TLS || !strings.HasPrefix(info.Streaming.URL, "https://") {
		t.Errorf("crictl info streaming = %+v, want tls and an https URL", info.Streaming)
	}
	if out, errOut, err := h.crictlRaw("exec", id, "echo", "over tls"); err != nil || out != "over tls\n" {
		t.Errorf("crictl exec over TLS: %v, stdout %q, stderr %q", err, out, errOut)
	}
	h.portForwardEcho(podID)

	h.writeDropIns(map[string]string{"60-client-ca.toml": "[streaming]\ntls_client_ca_file = \"" + certFile + "\"\n"})
	h.waitContainerState(id, "CONTAINER_RUNNING")
	if out, errOut, err := h.crictlRaw("exec", id, "echo", "over tls"); err == nil {
		t.Errorf("crictl exec without a client certificate: stdout %q, stderr %q; want it refused", out, errOut)
	}
	mtls := []string{"exec", "--tls-ca", certFile, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-server-name", "localhost", id, "echo", "over mtls"}
	if out, errOut, err := h.crictlRaw(mtls...); err != nil || out != "over mtls\n" {
		t.Errorf("crictl %s: %v, stdout %q, stderr %q", strings.Join(mtls, " "), err, out, errOut)
	}
	h.Crictl("rmp", "-f", podID)
}

// TestStreamIdleTimeout: a session with no data either way for
// streaming.idle_timeout is closed; one that keeps talking is not.
func TestStreamIdleTimeout(t *testing.T) {
	const idle = 2 * time.Second
	h, podID, id := runningShell(t, "exec sleep 600")
	h.writeDropIns(map[string]string{"50-idle.toml": "[streaming]\nidle_timeout = \"" + idle.String() + "\"\n"})
	h.waitContainerState(id, "CONTAINER_RUNNING")

	// cat with stdin open and nothing sent: idle from the start.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A pipe crictl holds itself (an *os.File), so Wait does not wait for
	// a copy from our end, which stays open and silent.
	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	cmd := h.crictlCmd(ctx, "exec", "-i", id, "cat")
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = stdin, &stderr
	began := time.Now()
	err = cmd.Start()
	stdin.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		if took := time.Since(began); took < idle {
			t.Errorf("idle exec ended after %v, before the %v idle timeout (stderr %q)", took, idle, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("idle exec still open 30s after it began, idle timeout %v", idle)
	}

	// Output every 500ms for 2.5 idle timeouts: never idle, never cut.
	out, errOut, err := h.crictlRaw("exec", id, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.5; done")
	if err != nil || !strings.HasSuffix(out, "9\n10\n") {
		t.Errorf("busy exec: %v, stdout %q, stderr %q; want it to run to 10", err, out, errOut)
	}
	h.Crictl("rmp", "-f", podID)
}

// portForwardEcho runs crictl port-forward to the echo server on the pod's
// port 8080 and checks a line comes back.
func (h *Harness) portForwardEcho(podID string) {
	h.t.Helper()
	local := freePort(h.t)
	ctx, cancel := context.WithCancel(context.Background())
	pf := h.crictlCmd(ctx, "port-forward", podID, fmt.Sprintf("%d:8080", local))
	var pfOut bytes.Buffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	if err := pf.Start(); err != nil {
		h.t.Fatal(err)
	}
	pfDone := make(chan struct{})
	go func() { _ = pf.Wait(); close(pfDone) }()
	defer func() {
		cancel() // kills crictl
		<-pfDone
	}()
	eventually(h.t, 20*time.Second, "echo through port-forward", func() (bool, string) {
		if isClosed(pfDone) {
			h.t.Fatalf("crictl port-forward exited: %s", pfOut.String())
		}
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", local), 2*time.Second)
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("ping\n")); err != nil {
			return false, err.Error()
		}
		got, err := bufio.NewReader(conn).ReadString('\n')
		return err == nil && got == "ping\n", fmt.Sprintf("got %q, %v", got, err)
	})
}
