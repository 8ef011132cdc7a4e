package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cribd is one real cribd on throwaway directories. Each test that needs
// one starts its own with Start; t.Cleanup stops it, removes the pods it
// left, deletes the bridge and the directories, and fails the test naming
// anything cribd leaked.
type Cribd struct {
	t    testing.TB
	opts Options

	Dir          string // everything below lives here
	RootDir      string
	RunDir       string
	Socket       string
	ConfigPath   string
	CgroupParent string // "/<name>-<random>"
	NetNSDir     string
	ConfDir      string
	BinDirs      []string
	CacheDir     string
	IPAMDataDir  string // host-local's dataDir
	LogPath      string // cribd's stderr, across restarts
	Bridge       string
	Network      Network
	// Binary is the cribd executable Start runs; empty is BinDir()/cribd.
	// A test may change it, and Env, between a Kill and the next Start
	// (the failpoint walk starts bin/cribd-failpoints armed, then cribd).
	Binary string
	// Env is added to the test's environment for the next Start.
	Env []string
	// KnownLeak, when set, names the known defect behind a leftover
	// (one of CheckLeaks' lines), which is then logged instead of failing
	// the test; "" fails it as usual. For defects another branch fixes.
	KnownLeak func(leak string) string

	mu   sync.Mutex
	proc *Process // the last cribd started; nil before the first

	baseline Snapshot // taken before cribd first starts
}

// Options change one cribd from the default bridge network.
type Options struct {
	// Name prefixes the temp dir (/tmp/<name>-*) and the cgroup parent
	// (/<name>-<random>); default "crib-it". Keep it short: cribd refuses
	// a run dir over 27 characters.
	Name string
	// Network is the bridge and subnet; default DefaultNetwork().
	Network Network
	// ConfFiles replaces the default conflist: file name → contents. The
	// placeholder @IPAM_DIR@ is replaced by the host-local dataDir,
	// @BRIDGE@ by the bridge name, @SUBNET@ by the pod subnet and @DIR@ by
	// the temp dir.
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

// Start creates a cribd's directories and config, starts it unless
// opts.NoStart, and registers the cleanup.
func Start(t testing.TB, opts Options) *Cribd {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "crib-it"
	}
	if opts.Network.Bridge == "" {
		opts.Network = DefaultNetwork()
	}
	// Under /tmp whatever TMPDIR says: cribd puts unix sockets under
	// run_dir/pods/<64-hex id>/, and a socket path has at most 107 bytes.
	dir, err := os.MkdirTemp("/tmp", opts.Name+"-")
	if err == nil {
		// Root in a pod's user namespace is no one on the host and must
		// search its way down to its root filesystem (cribd checks).
		err = os.Chmod(dir, 0o711)
	}
	if err != nil {
		t.Fatal(err)
	}
	h := &Cribd{
		t:            t,
		opts:         opts,
		Dir:          dir,
		RootDir:      filepath.Join(dir, "root"),
		RunDir:       filepath.Join(dir, "run"),
		Socket:       filepath.Join(dir, "run", "crib.sock"),
		ConfigPath:   filepath.Join(dir, "crib.toml"),
		CgroupParent: "/" + opts.Name + "-" + RandomHex(4),
		NetNSDir:     "/var/run/netns",
		ConfDir:      filepath.Join(dir, "net.d"),
		CacheDir:     filepath.Join(dir, "cni-cache"),
		IPAMDataDir:  filepath.Join(dir, "ipam"),
		LogPath:      filepath.Join(dir, "cribd.log"),
		Bridge:       opts.Network.Bridge,
		Network:      opts.Network,
	}
	h.baseline = h.Snapshot()
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
			if err := os.WriteFile(filepath.Join(pdir, name), []byte(h.Expand(body)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		h.BinDirs = append(h.BinDirs, pdir)
	}
	h.BinDirs = append(h.BinDirs, StdCNIDir)

	conf := opts.ConfFiles
	if conf == nil {
		conf = map[string]string{"10-cribit.conflist": DefaultConflist}
	}
	for name, body := range conf {
		h.WriteConf(name, body)
	}
	h.WriteConfig()
	if !opts.NoStart {
		h.Start()
	}
	return h
}

// Expand replaces the placeholders Options documents.
func (h *Cribd) Expand(s string) string {
	return strings.NewReplacer("@IPAM_DIR@", h.IPAMDataDir, "@BRIDGE@", h.Bridge, "@SUBNET@", h.Network.Subnet, "@DIR@", h.Dir).Replace(s)
}

// WriteConf writes a CNI config file atomically, expanding placeholders.
func (h *Cribd) WriteConf(name, body string) {
	h.t.Helper()
	tmp := filepath.Join(h.Dir, ".conf-"+name)
	if err := os.WriteFile(tmp, []byte(h.Expand(body)), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.ConfDir, name)); err != nil {
		h.t.Fatal(err)
	}
}

// WriteConfig writes crib.toml and crictl.yaml from the fields.
func (h *Cribd) WriteConfig() {
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
`, h.RootDir, h.RunDir, h.Socket, h.CgroupParent, h.NetNSDir, h.Expand(h.opts.RuntimeConfig), h.ConfDir, strings.Join(quoted, ", "), h.CacheDir)
	cfg += h.Expand(h.opts.ExtraConfig)
	if err := os.WriteFile(h.ConfigPath, []byte(cfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
	crictlCfg := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n", h.Socket, h.Socket)
	if err := os.WriteFile(filepath.Join(h.Dir, "crictl.yaml"), []byte(crictlCfg), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// Start starts cribd on the directories and waits until it answers
// Version.
func (h *Cribd) Start() {
	h.t.Helper()
	if h.Running() {
		h.t.Fatal("cribd already running")
	}
	bin := h.Binary
	if bin == "" {
		bin = filepath.Join(BinDir(), "cribd")
	}
	cmd := exec.Command(bin, "--config", h.ConfigPath, "--log-level", "debug")
	if len(h.Env) > 0 {
		cmd.Env = append(os.Environ(), h.Env...)
	}
	p := StartProcess(h.t, "cribd", cmd, h.LogPath)
	h.mu.Lock()
	h.proc = p
	h.mu.Unlock()
	p.WaitReady(h.t, 20*time.Second, "cribd answers Version on "+h.Socket, func() (bool, string) {
		_, e, err := h.CrictlRaw("version")
		return err == nil, fmt.Sprintf("%v: %s", err, e)
	})
}

// WaitExit waits up to timeout for cribd to exit by itself (a failpoint,
// a crash) and reports whether it did.
func (h *Cribd) WaitExit(timeout time.Duration) bool {
	p := h.process()
	if p == nil {
		return true
	}
	select {
	case <-p.Exited():
		return true
	case <-time.After(timeout):
		return false
	}
}

// Baseline is the host as it was before cribd first started.
func (h *Cribd) Baseline() Snapshot { return h.baseline }

// Kill sends SIGKILL to cribd and waits for it to die.
func (h *Cribd) Kill() {
	h.t.Helper()
	h.Signal(syscall.SIGKILL, 10*time.Second)
}

// Stop asks cribd to exit (SIGTERM), then kills it after 15s.
func (h *Cribd) Stop() {
	h.t.Helper()
	if p := h.process(); p != nil {
		p.Stop(h.t, 15*time.Second)
	}
}

// Signal sends sig to cribd and waits up to wait for it to exit; it
// reports whether cribd is gone.
func (h *Cribd) Signal(sig syscall.Signal, wait time.Duration) bool {
	p := h.process()
	return p == nil || p.Signal(sig, wait)
}

// Running reports whether cribd is running.
func (h *Cribd) Running() bool {
	p := h.process()
	return p != nil && p.Running()
}

// PID is the running cribd's process ID, 0 when none runs.
func (h *Cribd) PID() int {
	if p := h.process(); p != nil && p.Running() {
		return p.PID()
	}
	return 0
}

func (h *Cribd) process() *Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.proc
}

// Log returns cribd's log so far.
func (h *Cribd) Log() string { return ReadFile(h.LogPath) }

// cleanup runs at the end of the test: it removes the pods cribd still has,
// stops cribd, prints its log if the test failed, checks for leaks against
// the baseline, then removes whatever is left.
func (h *Cribd) cleanup() {
	t := h.t
	p := h.process()
	if p != nil && p.Crashed() {
		t.Errorf("cribd exited during the test: %v", p.ExitErr())
	}
	if h.Running() {
		if out, _, err := h.CrictlRaw("pods", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				if _, e, err := h.CrictlRaw("stopp", id); err != nil {
					t.Errorf("cleanup: crictl stopp %s: %v: %s", id, err, e)
				}
				if _, e, err := h.CrictlRaw("rmp", "-f", id); err != nil {
					t.Errorf("cleanup: crictl rmp %s: %v: %s", id, err, e)
				}
			}
		}
		h.Stop()
	}
	h.deleteBridge()

	h.CheckLeaks(t, h.baseline, "after cribd stopped")
	h.ForceCleanup()

	if p != nil {
		p.LogOnFailure(t, 2000)
	}
	if !keepDirs() {
		if err := os.RemoveAll(h.Dir); err != nil {
			t.Logf("cleanup: %v", err)
		}
	} else {
		t.Logf("CRIB_IT_KEEP/CRIB_E2E_KEEP set: keeping %s", h.Dir)
	}
}

func (h *Cribd) deleteBridge() {
	if _, err := os.Stat("/sys/class/net/" + h.Bridge); err != nil {
		return
	}
	if out, err := exec.Command("ip", "link", "del", h.Bridge).CombinedOutput(); err != nil {
		h.t.Logf("cleanup: ip link del %s: %v: %s", h.Bridge, err, out)
	}
}
