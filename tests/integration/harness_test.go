//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// Harness runs one real cribd on throwaway directories and drives it with the
// real crictl. Each test that needs cribd starts its own with start(t, opts);
// t.Cleanup stops it, removes the pods it left, deletes the bridge and the
// directories, and fails the test naming anything cribd leaked.
type Harness struct {
	t    *testing.T
	opts Options

	Dir          string // everything below lives here
	RootDir      string
	RunDir       string
	Socket       string
	ConfigPath   string
	CgroupParent string // "/crib-it-<random>"
	NetNSDir     string
	ConfDir      string
	BinDirs      []string
	CacheDir     string
	IPAMDataDir  string // host-local's dataDir
	LogPath      string // cribd's stderr, across restarts
	Bridge       string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error

	baseline snapshot // taken before cribd first starts
}

// Options change one harness from the default bridge network.
type Options struct {
	// ConfFiles replaces the default conflist: file name → contents. The
	// placeholder @IPAM_DIR@ is replaced by the harness's host-local dataDir,
	// @BRIDGE@ by its bridge name, @SUBNET@ by its pod subnet and @DIR@ by
	// its temp dir.
	ConfFiles map[string]string
	// Plugins are script CNI plugins (name → script body) written to a bin
	// directory searched before the standard ones.
	Plugins map[string]string
	// NoStart leaves cribd stopped; the test calls Start.
	NoStart bool
	// ExtraConfig is appended to the generated crib.toml (e.g. an [image]
	// section); placeholders are expanded as in ConfFiles.
	ExtraConfig string
	// RuntimeConfig is TOML added inside the [runtime] section.
	RuntimeConfig string
}

const stdCNIDir = "/usr/lib/cni"

// The bridge and subnet are per test binary, so that the integration tests,
// critest and the benchmark can run at once on one machine without sharing
// addresses. Tests within one binary run one at a time.
var (
	podOctet   = 100 + os.Getpid()%150
	bridgeName = fmt.Sprintf("cribit%d", podOctet)
	podPrefix  = fmt.Sprintf("10.88.%d.", podOctet)
	podSubnet  = podPrefix + "0/24"
)

// defaultConflist is the bridge network every harness gets unless Options
// says otherwise.
const defaultConflist = `{
  "cniVersion": "1.0.0",
  "name": "cribit",
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

// binDir is where cribd, crib-shim and crib-pause are.
func binDir() string {
	if d := os.Getenv("CRIB_BIN_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "bin")
}

// crictlPath is the crictl binary.
func crictlPath() string {
	if p := os.Getenv("CRICTL"); p != "" {
		return p
	}
	dir := os.Getenv("CRIB_TOOLS_DIR")
	if dir == "" {
		dir = "/var/cache/crib/tools"
	}
	return filepath.Join(dir, "cri-tools-v1.36.0", "crictl")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// start creates a harness, starts cribd unless opts.NoStart, and registers
// the cleanup.
func start(t *testing.T, opts Options) *Harness {
	t.Helper()
	// Under /tmp whatever TMPDIR says: cribd puts unix sockets under
	// run_dir/pods/<64-hex id>/, and a socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "crib-it-")
	if err != nil {
		t.Fatal(err)
	}
	h := &Harness{
		t:            t,
		opts:         opts,
		Dir:          dir,
		RootDir:      filepath.Join(dir, "root"),
		RunDir:       filepath.Join(dir, "run"),
		Socket:       filepath.Join(dir, "run", "crib.sock"),
		ConfigPath:   filepath.Join(dir, "crib.toml"),
		CgroupParent: "/crib-it-" + randomHex(4),
		NetNSDir:     "/var/run/netns",
		ConfDir:      filepath.Join(dir, "net.d"),
		CacheDir:     filepath.Join(dir, "cni-cache"),
		IPAMDataDir:  filepath.Join(dir, "ipam"),
		LogPath:      filepath.Join(dir, "cribd.log"),
		Bridge:       bridgeName,
	}
	h.baseline = h.snapshot()
	t.Cleanup(h.cleanup)

	for _, d := range []string{h.ConfDir, h.IPAMDataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if len(opts.Plugins) > 0 {
		pdir := filepath.Join(dir, "cni-bin")
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range opts.Plugins {
			if err := os.WriteFile(filepath.Join(pdir, name), []byte(h.expand(body)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		h.BinDirs = append(h.BinDirs, pdir)
	}
	h.BinDirs = append(h.BinDirs, stdCNIDir)

	conf := opts.ConfFiles
	if conf == nil {
		conf = map[string]string{"10-cribit.conflist": defaultConflist}
	}
	for name, body := range conf {
		h.WriteConf(name, body)
	}
	h.writeConfig()
	if !opts.NoStart {
		h.Start()
	}
	return h
}

// expand replaces the placeholders Options documents.
func (h *Harness) expand(s string) string {
	return strings.NewReplacer("@IPAM_DIR@", h.IPAMDataDir, "@BRIDGE@", h.Bridge, "@SUBNET@", podSubnet, "@DIR@", h.Dir).Replace(s)
}

// WriteConf writes a CNI config file atomically, expanding placeholders.
func (h *Harness) WriteConf(name, body string) {
	h.t.Helper()
	tmp := filepath.Join(h.Dir, ".conf-"+name)
	if err := os.WriteFile(tmp, []byte(h.expand(body)), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.ConfDir, name)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *Harness) writeConfig() {
	h.t.Helper()
	quoted := make([]string, len(h.BinDirs))
	for i, d := range h.BinDirs {
		quoted[i] = fmt.Sprintf("%q", d)
	}
	cfg := fmt.Sprintf(`root_dir = %q
run_dir = %q

[grpc]
socket = %q

[log]
level = "debug"

[runtime]
cgroup_parent = %q
netns_dir = %q
%s

[network]
conf_dir = %q
bin_dirs = [%s]
cache_dir = %q
`, h.RootDir, h.RunDir, h.Socket, h.CgroupParent, h.NetNSDir, h.expand(h.opts.RuntimeConfig), h.ConfDir, strings.Join(quoted, ", "), h.CacheDir)
	cfg += h.expand(h.opts.ExtraConfig)
	if err := os.WriteFile(h.ConfigPath, []byte(cfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
	crictlCfg := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n", h.Socket, h.Socket)
	if err := os.WriteFile(filepath.Join(h.Dir, "crictl.yaml"), []byte(crictlCfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// Start starts cribd on the harness's directories and waits until it answers
// Version.
func (h *Harness) Start() {
	h.t.Helper()
	if h.Running() {
		h.t.Fatal("cribd already running")
	}
	h.mu.Lock()
	logf, err := os.OpenFile(h.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		h.mu.Unlock()
		h.t.Fatal(err)
	}
	fmt.Fprintf(logf, "===== harness: starting cribd at %s =====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(filepath.Join(binDir(), "cribd"), "--config", h.ConfigPath, "--log-level", "debug")
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Its own process group, so a test's kill hits cribd alone and ^C on
	// the test does not reach it before cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		h.mu.Unlock()
		h.t.Fatalf("start cribd: %v", err)
	}
	exited := make(chan struct{})
	h.cmd, h.exited = cmd, exited
	h.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		h.mu.Lock()
		h.exitErr = err
		h.mu.Unlock()
		close(exited)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			h.mu.Lock()
			h.cmd = nil
			err := h.exitErr
			h.mu.Unlock()
			h.t.Fatalf("cribd exited during start: %v\n%s", err, tail(h.Log(), 40))
		default:
		}
		if _, _, err := h.crictlRaw("version"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("cribd did not answer Version on %s within 20s", h.Socket)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill sends SIGKILL to cribd and waits for it to die.
func (h *Harness) Kill() {
	h.t.Helper()
	h.signal(syscall.SIGKILL, 10*time.Second)
}

// Stop asks cribd to exit (SIGTERM), then kills it after 15s.
func (h *Harness) Stop() {
	h.t.Helper()
	if !h.signal(syscall.SIGTERM, 15*time.Second) {
		h.t.Errorf("cribd did not exit within 15s of SIGTERM; killing it")
		h.signal(syscall.SIGKILL, 10*time.Second)
	}
}

func (h *Harness) signal(sig syscall.Signal, wait time.Duration) bool {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		h.mu.Lock()
		h.cmd = nil
		h.mu.Unlock()
		return true
	case <-time.After(wait):
		return false
	}
}

// Running reports whether cribd is running.
func (h *Harness) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return false
	}
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// Log returns cribd's log so far.
func (h *Harness) Log() string {
	b, _ := os.ReadFile(h.LogPath)
	return string(b)
}

// crictlRaw runs crictl against this cribd.
func (h *Harness) crictlRaw(args ...string) (stdout, stderr string, err error) {
	full := append([]string{
		"--config", filepath.Join(h.Dir, "crictl.yaml"),
		"--runtime-endpoint", "unix://" + h.Socket,
		"--image-endpoint", "unix://" + h.Socket,
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
func (h *Harness) Crictl(args ...string) string {
	h.t.Helper()
	out, errOut, err := h.crictlRaw(args...)
	if err != nil {
		h.t.Fatalf("crictl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// CrictlJSON runs crictl and decodes its stdout into v.
func (h *Harness) CrictlJSON(v any, args ...string) {
	h.t.Helper()
	out := h.Crictl(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("crictl %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// WritePodConfig writes a pod config for crictl runp and returns its path.
func (h *Harness) WritePodConfig(cfg map[string]any) string {
	h.t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		h.t.Fatal(err)
	}
	f, err := os.CreateTemp(h.Dir, "pod-*.json")
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		h.t.Fatal(err)
	}
	return f.Name()
}

// RunPod runs crictl runp with cfg and returns the pod ID.
func (h *Harness) RunPod(cfg map[string]any) string {
	h.t.Helper()
	id := strings.TrimSpace(h.Crictl("runp", h.WritePodConfig(cfg)))
	if !isPodID(id) {
		h.t.Fatalf("crictl runp printed %q, not a 64-hex pod ID", id)
	}
	return id
}

func isPodID(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// podConfig is a minimal pod config with a unique name.
func podConfig(name string) map[string]any {
	suffix := randomHex(3)
	return map[string]any{
		"metadata": map[string]any{
			"name":      name + "-" + suffix,
			"uid":       "uid-" + name + "-" + suffix,
			"namespace": "crib-it",
			"attempt":   0,
		},
		"log_directory": "",
		"linux":         map[string]any{},
	}
}

// PodStatus is the part of `crictl inspectp -o json` the tests read.
type PodStatus struct {
	Status struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Metadata struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Namespace string `json:"namespace"`
			Attempt   int    `json:"attempt"`
		} `json:"metadata"`
		Network struct {
			IP            string `json:"ip"`
			AdditionalIPs []struct {
				IP string `json:"ip"`
			} `json:"additionalIps"`
		} `json:"network"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"status"`
	Info map[string]any `json:"info"`
}

// Inspect runs crictl inspectp.
func (h *Harness) Inspect(id string) PodStatus {
	h.t.Helper()
	var st PodStatus
	h.CrictlJSON(&st, "inspectp", "-o", "json", id)
	return st
}

// PodListEntry is one item of `crictl pods -o json`.
type PodListEntry struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Metadata struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Pods runs crictl pods and returns the pods by ID.
func (h *Harness) Pods() map[string]PodListEntry {
	h.t.Helper()
	var list struct {
		Items []PodListEntry `json:"items"`
	}
	h.CrictlJSON(&list, "pods", "-o", "json")
	m := make(map[string]PodListEntry, len(list.Items))
	for _, p := range list.Items {
		m[p.ID] = p
	}
	return m
}

// PausePID finds the pod's pause process: `info.pid` of crictl inspectp's
// verbose info, else the crib-pause process in the pod's cgroup.
func (h *Harness) PausePID(id string) int {
	h.t.Helper()
	st := h.Inspect(id)
	if info, ok := st.Info["info"].(map[string]any); ok {
		if pid, ok := info["pid"].(float64); ok && pid > 0 {
			return int(pid)
		}
	}
	if pid, ok := st.Info["pid"].(float64); ok && pid > 0 {
		return int(pid)
	}
	pid, err := h.pausePIDFromCgroup(id)
	if err != nil {
		h.t.Fatalf("pod %s: no info.pid in crictl inspectp and %v", id, err)
	}
	return pid
}

func (h *Harness) pausePIDFromCgroup(id string) (int, error) {
	files, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", h.CgroupParent, id, "cgroup.procs"))
	if len(files) == 0 {
		return 0, fmt.Errorf("no cgroup.procs under /sys/fs/cgroup/*%s/%s", h.CgroupParent, id)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(field, &pid); err != nil {
				continue
			}
			if processName(pid) == "crib-pause" {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no crib-pause process in %s", strings.Join(files, ", "))
}

// cleanup runs at the end of the test: it removes the pods cribd still has,
// stops cribd, prints its log if the test failed, checks for leaks against
// the baseline, then removes whatever is left.
func (h *Harness) cleanup() {
	t := h.t
	h.mu.Lock()
	crashed := h.cmd != nil && isClosed(h.exited)
	exitErr := h.exitErr
	h.mu.Unlock()
	if crashed {
		t.Errorf("cribd exited during the test: %v", exitErr)
	}
	if h.Running() {
		if out, _, err := h.crictlRaw("pods", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				if _, e, err := h.crictlRaw("stopp", id); err != nil {
					t.Errorf("cleanup: crictl stopp %s: %v: %s", id, err, e)
				}
				if _, e, err := h.crictlRaw("rmp", "-f", id); err != nil {
					t.Errorf("cleanup: crictl rmp %s: %v: %s", id, err, e)
				}
			}
		}
		h.Stop()
	}
	h.deleteBridge()

	h.checkLeaks(t, h.baseline, "after cribd stopped")
	h.forceCleanup()

	if t.Failed() {
		t.Logf("cribd log (%s, last 2000 lines):\n%s", h.LogPath, tail(h.Log(), 2000))
	}
	if os.Getenv("CRIB_IT_KEEP") == "" {
		if err := os.RemoveAll(h.Dir); err != nil {
			t.Logf("cleanup: %v", err)
		}
	} else {
		t.Logf("CRIB_IT_KEEP set: keeping %s", h.Dir)
	}
}

func (h *Harness) deleteBridge() {
	if _, err := os.Stat("/sys/class/net/" + h.Bridge); err != nil {
		return
	}
	if out, err := exec.Command("ip", "link", "del", h.Bridge).CombinedOutput(); err != nil {
		h.t.Logf("cleanup: ip link del %s: %v: %s", h.Bridge, err, out)
	}
}

// eventually polls cond every 100ms until it returns true or timeout passes,
// then fails the test with the last reason cond gave.
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
		time.Sleep(100 * time.Millisecond)
	}
}

// processName is /proc/<pid>/comm, or the base of /proc/<pid>/exe when
// that is one of crib's (a re-exec through /proc/self/exe leaves comm "exe").
func processName(pid int) string {
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
		if base == "crib-shim" || base == "crib-pause" {
			return base
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// requireEnv says why the tests cannot run here, if they cannot: not root,
// or no cribd or crictl.
func requireEnv() error {
	if os.Geteuid() != 0 {
		return errors.New("integration tests need root")
	}
	for _, b := range []string{"cribd", "crib-shim", "crib-pause"} {
		if _, err := os.Stat(filepath.Join(binDir(), b)); err != nil {
			return fmt.Errorf("%w (run make build, or set CRIB_BIN_DIR)", err)
		}
	}
	if _, err := os.Stat(crictlPath()); err != nil {
		return fmt.Errorf("%w (run scripts/build-cri-tools.sh, or set CRICTL)", err)
	}
	return nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// crictlError picks crictl's fatal message out of its stderr.
func crictlError(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "level=fatal") {
			if i := strings.Index(line, "msg="); i >= 0 {
				return line[i+len("msg="):]
			}
			return line
		}
	}
	return strings.TrimSpace(stderr)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
