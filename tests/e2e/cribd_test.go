//go:build e2e

package e2e

// The cribd and registry half of the harness: a trimmed copy of
// tests/integration's Harness and startRegistry (those are _test.go files of
// another package). Keep the two in step until they move to a shared package.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func toolsDir() string {
	if d := os.Getenv("CRIB_TOOLS_DIR"); d != "" {
		return d
	}
	return "/var/cache/crib/tools"
}

func repoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func binDir() string {
	if d := os.Getenv("CRIB_BIN_DIR"); d != "" {
		return d
	}
	return filepath.Join(repoDir(), "bin")
}

func crictlPath() string {
	if p := os.Getenv("CRICTL"); p != "" {
		return p
	}
	return filepath.Join(toolsDir(), "cri-tools-v1.36.0", "crictl")
}

func kubeletPath() string {
	if p := os.Getenv("KUBELET"); p != "" {
		return p
	}
	return filepath.Join(toolsDir(), "kubelet-v1.34.4", "kubelet")
}

func requireEnv() error {
	if os.Geteuid() != 0 {
		return errors.New("e2e tests need root")
	}
	for _, b := range []string{"cribd", "crib-shim", "crib-pause"} {
		if _, err := os.Stat(filepath.Join(binDir(), b)); err != nil {
			return fmt.Errorf("%w (run make build, or set CRIB_BIN_DIR)", err)
		}
	}
	if _, err := os.Stat(crictlPath()); err != nil {
		return fmt.Errorf("%w (run scripts/build-cri-tools.sh, or set CRICTL)", err)
	}
	if _, err := os.Stat(kubeletPath()); err != nil {
		return fmt.Errorf("%w (run scripts/build-kubelet.sh, or set KUBELET)", err)
	}
	for _, tool := range []string{"docker-registry", "iptables", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return err
		}
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// One bridge and /24 per test binary, away from the integration suites'
// 10.88.100-249 and critest's 10.88.99.
var (
	podOctet   = 50 + os.Getpid()%40
	bridgeName = fmt.Sprintf("cribe2e%d", podOctet)
	podPrefix  = fmt.Sprintf("10.88.%d.", podOctet)
	podSubnet  = podPrefix + "0/24"
)

const conflist = `{
  "cniVersion": "1.0.0",
  "name": "cribe2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "@BRIDGE@",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "@SUBNET@"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "@IPAM_DIR@"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// Cribd is one running cribd on the test's directories.
type Cribd struct {
	t            *testing.T
	Dir          string
	RootDir      string
	RunDir       string
	Socket       string
	ConfigPath   string
	CgroupParent string
	IPAMDataDir  string
	LogPath      string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// startCribd starts cribd under dir with a bridge network and the given
// registries.conf; t.Cleanup removes its pods, stops it and deletes the bridge.
func startCribd(t *testing.T, dir, registriesConfPath string) *Cribd {
	t.Helper()
	c := &Cribd{
		t:            t,
		Dir:          dir,
		RootDir:      filepath.Join(dir, "root"),
		RunDir:       filepath.Join(dir, "run"),
		Socket:       filepath.Join(dir, "run", "crib.sock"),
		ConfigPath:   filepath.Join(dir, "crib.toml"),
		CgroupParent: "/crib-e2e-" + randomHex(4),
		IPAMDataDir:  filepath.Join(dir, "ipam"),
		LogPath:      filepath.Join(dir, "cribd.log"),
	}
	netDir := filepath.Join(dir, "net.d")
	for _, d := range []string{netDir, c.IPAMDataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.NewReplacer("@BRIDGE@", bridgeName, "@SUBNET@", podSubnet, "@IPAM_DIR@", c.IPAMDataDir).Replace(conflist)
	if err := os.WriteFile(filepath.Join(netDir, "10-cribe2e.conflist"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`root_dir = %q
run_dir = %q

[grpc]
socket = %q

[log]
level = "debug"

[runtime]
cgroup_parent = %q
netns_dir = "/var/run/netns"

[network]
conf_dir = %q
bin_dirs = ["/usr/lib/cni"]
cache_dir = %q

[image]
registries_conf = %q
`, c.RootDir, c.RunDir, c.Socket, c.CgroupParent, netDir, filepath.Join(dir, "cni-cache"), registriesConfPath)
	if err := os.WriteFile(c.ConfigPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	c.Start()
	return c
}

// Start starts cribd and waits until it answers Version.
func (c *Cribd) Start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logf, "===== e2e: starting cribd at %s =====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(filepath.Join(binDir(), "cribd"), "--config", c.ConfigPath, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start cribd: %v", err)
	}
	exited := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.exited = cmd, exited
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		c.mu.Lock()
		c.exitErr = err
		c.mu.Unlock()
		close(exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			c.t.Fatalf("cribd exited during start: %v\n%s", c.exitErr, tail(readFile(c.LogPath), 40))
		default:
		}
		if _, _, err := c.crictlRaw("version"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cribd did not answer Version on %s within 20s", c.Socket)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop sends SIGTERM, then SIGKILL after 15s.
func (c *Cribd) Stop() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		c.t.Errorf("cribd did not exit within 15s of SIGTERM; killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
	c.mu.Lock()
	c.cmd = nil
	c.mu.Unlock()
}

func (c *Cribd) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd != nil && !isClosed(c.exited)
}

func (c *Cribd) crictlRaw(args ...string) (stdout, stderr string, err error) {
	full := append([]string{
		"--runtime-endpoint", "unix://" + c.Socket,
		"--image-endpoint", "unix://" + c.Socket,
		"--timeout", "30s",
	}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, crictlPath(), full...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Crictl runs crictl and fails the test if it fails; it returns stdout.
func (c *Cribd) Crictl(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.crictlRaw(args...)
	if err != nil {
		c.t.Fatalf("crictl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// CrictlJSON runs crictl and decodes its stdout into v.
func (c *Cribd) CrictlJSON(v any, args ...string) {
	c.t.Helper()
	out := c.Crictl(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("crictl %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

func (c *Cribd) cleanup() {
	t := c.t
	c.mu.Lock()
	crashed := c.cmd != nil && isClosed(c.exited)
	c.mu.Unlock()
	if crashed {
		t.Errorf("cribd exited during the test: %v", c.exitErr)
	}
	if c.running() {
		if out, _, err := c.crictlRaw("pods", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				if _, e, err := c.crictlRaw("stopp", id); err != nil {
					t.Errorf("cleanup: crictl stopp %s: %v: %s", id, err, e)
				}
				if _, e, err := c.crictlRaw("rmp", "-f", id); err != nil {
					t.Errorf("cleanup: crictl rmp %s: %v: %s", id, err, e)
				}
			}
		}
		c.Stop()
	}
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err == nil {
		if out, err := exec.Command("ip", "link", "del", bridgeName).CombinedOutput(); err != nil {
			t.Logf("cleanup: ip link del %s: %v: %s", bridgeName, err, out)
		}
	}
	// cribd's own cgroup parent (used by pods that name none).
	removeCgroupTree(t, c.CgroupParent)
	if t.Failed() {
		t.Logf("cribd log (%s, last 1000 lines):\n%s", c.LogPath, tail(readFile(c.LogPath), 1000))
	}
}

// Registry is one docker-registry on loopback serving the seeded test images.
type Registry struct {
	Addr string
	Log  string
}

var buildImagesOnce struct {
	sync.Once
	err error
}

// startRegistry copies tests/images' seeded storage and serves it.
func startRegistry(t *testing.T, dir string) *Registry {
	t.Helper()
	buildImagesOnce.Do(func() {
		script := filepath.Join(repoDir(), "tests", "images", "build.sh")
		if out, err := exec.Command(script).CombinedOutput(); err != nil {
			buildImagesOnce.err = fmt.Errorf("%s: %v\n%s", script, err, out)
		}
	})
	if buildImagesOnce.err != nil {
		t.Fatal(buildImagesOnce.err)
	}
	storage := filepath.Join(dir, "registry-storage")
	if out, err := exec.Command("cp", "-a", filepath.Join(toolsDir(), "images", "registry"), storage).CombinedOutput(); err != nil {
		t.Fatalf("copy seeded registry: %v: %s", err, out)
	}
	r := &Registry{Addr: freeAddr(t), Log: filepath.Join(dir, "registry.log")}
	cfg := filepath.Join(dir, "registry.yml")
	body := fmt.Sprintf("version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"+
		"storage: {filesystem: {rootdirectory: %q}, delete: {enabled: true}}\nhttp: {addr: %q}\n", storage, r.Addr)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(r.Log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start docker-registry: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	eventually(t, 10*time.Second, "registry answers /v2/", func() (bool, string) {
		select {
		case <-done:
			t.Fatalf("docker-registry exited: %s", readFile(r.Log))
		default:
		}
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return r
}

// registriesConf rewrites the public registries to addr (insecure): a
// rewrite, not a mirror, so that nothing reaches off the machine.
func registriesConf(addr string) string {
	s := "unqualified-search-registries = []\n"
	for _, reg := range []string{"docker.io", "registry.k8s.io", "k8s.gcr.io", "gcr.io", "public.ecr.aws"} {
		s += fmt.Sprintf("\n[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", reg, addr)
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	var p int
	fmt.Sscan(port, &p)
	return p
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %s", what, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
