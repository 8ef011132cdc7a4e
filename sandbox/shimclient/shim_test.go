package shimclient

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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/procfs"
)

// These tests run crib-shim for real: they need root, cgroups under
// /sys/fs/cgroup, a C compiler with static libc, and ip(8)/nsenter(1).

var (
	shimBin  string // built crib-shim
	pauseBin string // built crib-pause
	buildErr error
)

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			buildErr = errors.New("not root")
			return m.Run()
		}
		tmp, err := os.MkdirTemp("", "crib-shim-bin-")
		if err != nil {
			buildErr = err
			return m.Run()
		}
		defer os.RemoveAll(tmp)
		shimBin = filepath.Join(tmp, "crib-shim")
		pauseBin = filepath.Join(tmp, "crib-pause")
		buildErr = build(shimBin, pauseBin)
		return m.Run()
	}()
	os.Exit(code)
}

func build(shimBin, pauseBin string) error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"go", "build", "-tags", "seccomp", "-ldflags", "-s -w", "-o", shimBin, "./cmd/crib-shim"},
		{"cc", "-static", "-Os", "-Wall", "-o", pauseBin, "cmd/crib-pause/pause.c"},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// needShim skips without root and fails if the binaries did not build.
func needShim(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if testing.Short() {
		t.Skip("integration test")
	}
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pod is one shim under test, with a cgroup parent unique to the test.
type pod struct {
	t      *testing.T
	dir    string
	rootfs string
	cgroup string // "/crib-test-<random>": the pod's cgroup parent
	client *Client
	pids   []int // container inits, killed at cleanup if still alive
}

// newPod builds a read-only-able rootfs with only crib-pause in it, launches
// a shim and registers cleanups that remove everything even on failure.
func newPod(t *testing.T) *pod {
	t.Helper()
	needShim(t)
	p := &pod{t: t, dir: t.TempDir(), cgroup: "/crib-test-" + randHex(t, 4)}
	p.rootfs = filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(p.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(pauseBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.rootfs, "crib-pause"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cleanup)

	// The launch context ends right after Launch: the shim must not care.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := Launch(ctx, LaunchOptions{Binary: shimBin, Dir: p.dir, LogLevel: "debug"})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	t.Logf("MEASURE launch (start to ready+connected): %v", time.Since(t0))
	p.client = c
	return p
}

// cleanup kills what a failed test left (shim, containers) and removes the
// test's cgroups; it also dumps the shim log when the test failed.
func (p *pod) cleanup() {
	t := p.t
	if c := p.client; c != nil {
		if c.alive() {
			_ = syscall.Kill(c.pid, syscall.SIGKILL)
		}
		c.Close()
	}
	for _, pid := range p.pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + p.cgroup)
	for _, d := range dirs {
		removeTree(d)
	}
	if t.Failed() || os.Getenv("CRIB_TEST_SHIM_LOG") != "" {
		if log, err := os.ReadFile(filepath.Join(p.dir, shimapi.LogName)); err == nil {
			t.Logf("shim.log:\n%s", log)
		}
	}
}

func removeTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	for i := 0; i < 50; i++ {
		if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type nsSpec map[specs.LinuxNamespaceType]string // type -> path ("" = new)

func defaultNamespaces() nsSpec {
	return nsSpec{specs.PIDNamespace: "", specs.IPCNamespace: "", specs.UTSNamespace: "", specs.MountNamespace: "", specs.NetworkNamespace: ""}
}

// spec is a pause container's OCI spec: read-only root, /proc and /dev,
// no capabilities.
func (p *pod) spec(id, hostname string, ns nsSpec, args ...string) *specs.Spec {
	if len(args) == 0 {
		args = []string{"/crib-pause"}
	}
	var namespaces []specs.LinuxNamespace
	for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.NetworkNamespace} {
		if path, ok := ns[typ]; ok {
			namespaces = append(namespaces, specs.LinuxNamespace{Type: typ, Path: path})
		}
	}
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: p.rootfs, Readonly: true},
		Hostname: hostname,
		Process: &specs.Process{
			Args:            args,
			Env:             []string{"PATH=/"},
			Cwd:             "/",
			Capabilities:    &specs.LinuxCapabilities{},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=1m"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: p.cgroup + "/" + id,
			Namespaces:  namespaces,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
		},
	}
}

func (p *pod) create(id string, spec *specs.Spec, logPath string) int {
	p.t.Helper()
	pid, err := p.client.Create(ctxT(p.t), &shimapi.CreateRequest{ID: id, Spec: spec, LogPath: logPath})
	if err != nil {
		p.t.Fatalf("Create %s: %v", id, err)
	}
	p.pids = append(p.pids, pid)
	return pid
}

func (p *pod) state(id string) *shimapi.State {
	p.t.Helper()
	st, err := p.client.State(ctxT(p.t), id)
	if err != nil {
		p.t.Fatalf("State %s: %v", id, err)
	}
	return st
}

// waitStopped polls State until the container has stopped.
func (p *pod) waitStopped(id string) *shimapi.State {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := p.state(id)
		if st.Status == shimapi.StatusStopped {
			return st
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("container %s still %s", id, st.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cgroupLeftovers lists the hierarchies that still hold path.
func cgroupLeftovers(path string) []string {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + path)
	return dirs
}

// cgroupChildren lists the cgroups still below the pod's parent path in
// any hierarchy. The shim owns its containers' cgroups only; the parent is
// cribd's (internal/cgroup.Parents), so the test's cleanup removes it.
func cgroupChildren(path string) []string {
	var left []string
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + path + "/*")
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			left = append(left, d)
		}
	}
	return left
}

// processGone reports whether pid no longer exists (or is not the process
// that had start time start).
func processGone(pid int, start uint64) bool {
	st, err := procfs.StartTime(pid)
	return err != nil || st != start
}

func nsLink(t *testing.T, pid, ns string) string {
	t.Helper()
	l, err := os.Readlink(filepath.Join("/proc", pid, "ns", ns))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPauseLifecycle(t *testing.T) {
	p := newPod(t)
	ctx := ctxT(t)
	id := "pause-" + randHex(t, 8)
	hostname := "crib-" + randHex(t, 3)

	spec := p.spec(id, hostname, defaultNamespaces())
	// Below the shim's own oom_score_adj: the shim must clamp it, as the
	// write would fail without CAP_SYS_RESOURCE.
	lowAdj := -500
	spec.Process.OOMScoreAdj = &lowAdj
	// A seccomp filter proves the seccomp build tag took effect.
	spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}

	t0 := time.Now()
	pid := p.create(id, spec, "")
	tCreate := time.Since(t0)
	if st := p.state(id); st.Status != shimapi.StatusCreated || st.Pid != pid {
		t.Fatalf("after Create: %+v", st)
	}
	t1 := time.Now()
	if err := p.client.Start(ctx, id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("MEASURE create: %v, start: %v, create+start: %v", tCreate, time.Since(t1), time.Since(t0))
	if err := p.client.Start(ctx, id); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("second Start: %v, want FailedPrecondition", err)
	}

	// It runs crib-pause as PID 1 of its own namespaces.
	spid := strconv.Itoa(pid)
	exe, err := os.Readlink("/proc/" + spid + "/exe")
	if err != nil || !strings.HasSuffix(exe, "/crib-pause") {
		t.Errorf("init exe = %q, %v", exe, err)
	}
	for _, ns := range []string{"pid", "ipc", "uts", "mnt", "net"} {
		if c, h := nsLink(t, spid, ns), nsLink(t, "self", ns); c == h {
			t.Errorf("container shares the host's %s namespace (%s)", ns, c)
		}
	}
	out, err := exec.Command("nsenter", "-u", "-t", spid, "hostname").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != hostname {
		t.Errorf("hostname in container = %q, %v; want %q", out, err, hostname)
	}
	procs, err := os.ReadFile("/sys/fs/cgroup/memory" + p.cgroup + "/" + id + "/cgroup.procs")
	if err != nil || strings.TrimSpace(string(procs)) != spid {
		t.Errorf("memory cgroup procs = %q, %v; want %d", procs, err, pid)
	}
	if caps := procStatus(t, spid, "CapEff"); caps != "0000000000000000" {
		t.Errorf("CapEff = %s, want none", caps)
	}
	if mode := procStatus(t, spid, "Seccomp"); mode != "2" {
		t.Errorf("Seccomp mode = %q, want 2 (filter)", mode)
	}
	shimAdj, _ := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", p.client.Pid()))
	if adj, _ := os.ReadFile("/proc/" + spid + "/oom_score_adj"); string(adj) != string(shimAdj) {
		t.Errorf("oom_score_adj = %q, want the shim's %q", adj, shimAdj)
	}

	st := p.state(id)
	if st.Status != shimapi.StatusRunning || st.Pid != pid || st.CreatedAt.IsZero() || st.StartedAt.IsZero() || !st.FinishedAt.IsZero() {
		t.Errorf("State = %+v", st)
	}
	start, err := procfs.StartTime(pid)
	if err != nil || st.PidStartTime != start {
		t.Errorf("PidStartTime = %d, /proc says %d (%v)", st.PidStartTime, start, err)
	}
	// A second connection, as a restarted cribd would make, sees the same.
	c2, err := Connect(p.dir)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if st2, err := c2.State(ctx, id); err != nil || st2.Pid != pid || st2.Status != shimapi.StatusRunning {
		t.Errorf("State over a second connection: %+v, %v", st2, err)
	}
	c2.Close()
	saved := readSavedState(t, p.dir, id)
	if saved.Status != shimapi.StatusRunning || saved.Pid != pid {
		t.Errorf("state.json = %+v", saved)
	}
	// The cgroup directories libcontainer made are recorded, for cribd's
	// stats, and the init is in them.
	if len(saved.CgroupPaths) == 0 {
		t.Errorf("state.json records no cgroup paths")
	}
	for ctrl, dir := range saved.CgroupPaths {
		if ctrl != "memory" && ctrl != "" {
			continue
		}
		procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(pid)) {
			t.Errorf("cgroup %q recorded at %s: procs %q, %v; want pid %d", ctrl, dir, procs, err, pid)
		}
	}

	// Shim footprint, idle with one pause container.
	time.Sleep(300 * time.Millisecond)
	shimPid := strconv.Itoa(p.client.Pid())
	t.Logf("MEASURE shim idle with 1 pause: VmRSS %s, Pss %s (pause VmRSS %s)",
		procStatus(t, shimPid, "VmRSS"), smapsRollup(t, shimPid, "Pss"), procStatus(t, spid, "VmRSS"))

	// A second shim for the same directory must refuse to start, and say why.
	if _, err := Launch(ctx, LaunchOptions{Binary: shimBin, Dir: p.dir}); err == nil || !strings.Contains(err.Error(), "another shim is listening") {
		t.Errorf("second Launch: %v", err)
	}

	// SIGTERM: pause exits 0.
	if err := p.client.Kill(ctx, id, syscall.SIGTERM); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	st = p.waitStopped(id)
	if st.ExitCode != 0 || st.FinishedAt.IsZero() || st.OOMKilled {
		t.Errorf("after SIGTERM: %+v", st)
	}
	if err := p.client.Kill(ctx, id, syscall.SIGTERM); err != nil {
		t.Errorf("Kill of a stopped container: %v", err)
	}
	if saved := readSavedState(t, p.dir, id); saved.Status != shimapi.StatusStopped {
		t.Errorf("state.json after exit = %+v", saved)
	}

	t2 := time.Now()
	if err := p.client.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	t.Logf("MEASURE delete (stopped): %v", time.Since(t2))
	if left := cgroupChildren(p.cgroup); len(left) > 0 {
		t.Errorf("cgroups left after Delete: %v", left)
	}
	if !processGone(pid, start) {
		t.Errorf("pause %d still exists", pid)
	}
	if kids := shimChildren(t, p.client.Pid()); len(kids) > 0 {
		t.Errorf("shim still has children %v", kids)
	}
	for _, f := range []string{"containers/" + id, "libcontainer/" + id} {
		if _, err := os.Stat(filepath.Join(p.dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Delete (%v)", f, err)
		}
	}
	if err := p.client.Delete(ctx, id); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := p.client.State(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("State after Delete: %v, want NotFound", err)
	}

	// Shutdown deletes a running container too, and the shim exits.
	id2 := "pause2-" + randHex(t, 4)
	pid2 := p.create(id2, p.spec(id2, hostname, defaultNamespaces()), "")
	start2, _ := procfs.StartTime(pid2)
	if err := p.client.Start(ctx, id2); err != nil {
		t.Fatalf("Start: %v", err)
	}
	shim := p.client.Pid()
	t3 := time.Now()
	if err := p.client.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("MEASURE shutdown with 1 running pause (until shim gone): %v", time.Since(t3))
	if err := syscall.Kill(shim, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("shim %d still exists after Shutdown (kill 0: %v)", shim, err)
	}
	if !processGone(pid2, start2) {
		t.Errorf("pause %d survived Shutdown", pid2)
	}
	if left := cgroupChildren(p.cgroup); len(left) > 0 {
		t.Errorf("cgroups left after Shutdown: %v", left)
	}
	if _, err := Connect(p.dir); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Connect after Shutdown: %v, want Unavailable", err)
	}
}

// TestJoinExistingNamespaces: a pause container joins a pre-made netns by
// path; an app container joins the pause's namespaces through /proc and
// shares its pod cgroup; logs land in CRI format; the pod cgroup goes with
// the last container, whatever the delete order.
func TestJoinExistingNamespaces(t *testing.T) {
	p := newPod(t)
	ctx := ctxT(t)
	netns := "crib-test-" + randHex(t, 4)
	if out, err := exec.Command("ip", "netns", "add", netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", netns).Run() })
	nsPath := "/var/run/netns/" + netns

	id := "pause-" + randHex(t, 8)
	ns := defaultNamespaces()
	ns[specs.NetworkNamespace] = nsPath
	pid := p.create(id, p.spec(id, "joined", ns), "")
	if err := p.client.Start(ctx, id); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var want, got unix.Stat_t
	if err := unix.Stat(nsPath, &want); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ino != want.Ino || got.Dev != want.Dev {
		t.Errorf("pause net ns inode %d, want %d (%s)", got.Ino, want.Ino, nsPath)
	}

	// App container in the pause's net/ipc/uts, printing to a CRI log.
	app := "app-" + randHex(t, 8)
	proc := fmt.Sprintf("/proc/%d/ns/", pid)
	appNS := nsSpec{
		specs.PIDNamespace: "", specs.MountNamespace: "",
		specs.NetworkNamespace: proc + "net", specs.IPCNamespace: proc + "ipc", specs.UTSNamespace: proc + "uts",
	}
	logPath := filepath.Join(t.TempDir(), "logs", "app.log")
	appSpec := p.spec(app, "", appNS, "/crib-pause", "bogus-arg")
	appPid := p.create(app, appSpec, logPath)
	if l1, l2 := nsLink(t, strconv.Itoa(appPid), "net"), nsLink(t, strconv.Itoa(pid), "net"); l1 != l2 {
		t.Errorf("app net ns %s, pause %s", l1, l2)
	}
	if err := p.client.Start(ctx, app); err != nil {
		t.Fatalf("Start app: %v", err)
	}
	st := p.waitStopped(app)
	if st.ExitCode != 2 {
		t.Errorf("app exit code %d, want 2", st.ExitCode)
	}
	logData, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(logData, []byte(" stderr F usage: crib-pause [-v | -hold]\n")) {
		t.Errorf("log file:\n%s", logData)
	}

	// SIGKILL: exit code 128+9.
	if err := p.client.Kill(ctx, id, syscall.SIGKILL); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if st := p.waitStopped(id); st.ExitCode != 137 {
		t.Errorf("exit code after SIGKILL %d, want 137", st.ExitCode)
	}

	// Pause first: the pod cgroup stays for the app, then goes with it.
	if err := p.client.Delete(ctx, id); err != nil {
		t.Fatalf("Delete pause: %v", err)
	}
	if left := cgroupLeftovers(p.cgroup + "/" + id); len(left) > 0 {
		t.Errorf("pause cgroups left: %v", left)
	}
	if left := cgroupLeftovers(p.cgroup + "/" + app); len(left) == 0 {
		t.Errorf("app cgroup vanished before its Delete")
	}
	if err := p.client.Delete(ctx, app); err != nil {
		t.Fatalf("Delete app: %v", err)
	}
	if left := cgroupChildren(p.cgroup); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if _, err := os.Stat(nsPath); err != nil {
		t.Errorf("pre-existing netns gone after Delete: %v", err)
	}
	if err := p.client.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestCreateFailureLeavesNothing: failed creates (bad rootfs: caught before
// any cgroup exists; missing binary: caught in "init", after cgroups were
// made) leave no cgroup, no libcontainer state and no container record.
func TestCreateFailureLeavesNothing(t *testing.T) {
	p := newPod(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
		want   string // in the error
	}{
		{"missing rootfs", func(s *specs.Spec) { s.Root.Path = "/nonexistent/crib-rootfs" }, "rootfs"},
		{"missing binary", func(s *specs.Spec) { s.Process.Args = []string{"/no-such-binary"} }, "no-such-binary"},
		{"relative cgroup", func(s *specs.Spec) { s.Linux.CgroupsPath = "crib-test/x" }, "cgroupsPath"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "bad-" + randHex(t, 8)
			spec := p.spec(id, "bad", defaultNamespaces())
			tc.mutate(spec)
			_, err := p.client.Create(ctx, &shimapi.CreateRequest{ID: id, Spec: spec})
			if err == nil {
				t.Fatal("Create succeeded")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q or the ID", err, tc.want)
			}
			if left := cgroupChildren(p.cgroup); len(left) > 0 {
				t.Errorf("cgroups left: %v", left)
			}
			for _, f := range []string{"containers/" + id, "libcontainer/" + id} {
				if _, err := os.Stat(filepath.Join(p.dir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left (%v)", f, err)
				}
			}
			if _, err := p.client.State(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("State: %v, want NotFound", err)
			}
			if kids := shimChildren(t, p.client.Pid()); len(kids) > 0 {
				t.Errorf("shim has children %v", kids)
			}
		})
	}

	// Duplicate IDs are refused without harming the first container.
	id := "dup-" + randHex(t, 8)
	p.create(id, p.spec(id, "dup", defaultNamespaces()), "")
	_, err := p.client.Create(ctx, &shimapi.CreateRequest{ID: id, Spec: p.spec(id, "dup", defaultNamespaces())})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("duplicate Create: %v, want AlreadyExists", err)
	}
	if st := p.state(id); st.Status != shimapi.StatusCreated {
		t.Errorf("first container after duplicate Create: %+v", st)
	}
	// Delete of a created (never started) container.
	if err := p.client.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if left := cgroupChildren(p.cgroup); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if err := p.client.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestMeasureCycle times repeated Create+Start and Delete of a pause
// container on one shim.
func TestMeasureCycle(t *testing.T) {
	p := newPod(t)
	ctx := ctxT(t)
	const n = 10
	var cs, del []time.Duration
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("m%d-%s", i, randHex(t, 4))
		t0 := time.Now()
		p.create(id, p.spec(id, "m", defaultNamespaces()), "")
		if err := p.client.Start(ctx, id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		cs = append(cs, time.Since(t0))
		t1 := time.Now()
		if err := p.client.Delete(ctx, id); err != nil { // running: SIGKILL + wait
			t.Fatalf("Delete: %v", err)
		}
		del = append(del, time.Since(t1))
	}
	slices.Sort(cs)
	slices.Sort(del)
	t.Logf("MEASURE %d cycles: create+start min %v median %v max %v; delete(running) min %v median %v max %v",
		n, cs[0], cs[n/2], cs[n-1], del[0], del[n/2], del[n-1])
	if left := cgroupChildren(p.cgroup); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	if err := p.client.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func readSavedState(t *testing.T, dir, id string) shimapi.State {
	t.Helper()
	var st shimapi.State
	data, err := os.ReadFile(shimapi.StateFile(dir, id))
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		t.Errorf("read state.json: %v", err)
	}
	return st
}

func procStatus(t *testing.T, pid, key string) string {
	t.Helper()
	return procField(t, "/proc/"+pid+"/status", key)
}

func smapsRollup(t *testing.T, pid, key string) string {
	t.Helper()
	return procField(t, "/proc/"+pid+"/smaps_rollup", key)
}

func procField(t *testing.T, path, key string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// shimChildren lists the children of the shim process.
func shimChildren(t *testing.T, pid int) []string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, task := range tasks {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		kids = append(kids, strings.Fields(string(data))...)
	}
	return kids
}
