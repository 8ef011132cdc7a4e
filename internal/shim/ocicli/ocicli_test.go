package ocicli

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/shim/task"
)

// fakeRunner records each command and answers from a table keyed by the
// command name (the first argument after the global options).
type fakeRunner struct {
	calls [][]string
	out   map[string]string
	fail  map[string]error
	// pid is written to the pid file of "create" and "exec".
	pid string
}

func (f *fakeRunner) run(path string, args []string, _ Files) ([]byte, error) {
	f.calls = append(f.calls, append([]string{path}, args...))
	cmd := commandOf(args)
	if cmd == "create" || cmd == "exec" {
		for i, a := range args {
			if a == "--pid-file" {
				if err := os.WriteFile(args[i+1], []byte(f.pid), 0o600); err != nil {
					return nil, err
				}
			}
		}
	}
	return []byte(f.out[cmd]), f.fail[cmd]
}

// commandOf skips the global options (--root R, --log L, --systemd-cgroup).
func commandOf(args []string) string {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--root", "--log":
			i++
		case "--systemd-cgroup":
		default:
			return args[i]
		}
	}
	return ""
}

func newTestRuntime(t *testing.T, f *fakeRunner) (*Runtime, string) {
	t.Helper()
	return &Runtime{Handler: "crun", Path: "/usr/bin/crun", Root: "/run/crib/runtimes/crun", Run: f.run, Spawn: &sync.Mutex{}}, t.TempDir()
}

func testSpec(cgroupsPath string) *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{Args: []string{"sleep", "1"}, Env: []string{"A=b"}, Cwd: "/", User: specs.User{UID: 1000}},
		Root:    &specs.Root{Path: "/rootfs"},
		Linux:   &specs.Linux{CgroupsPath: cgroupsPath},
	}
}

func TestCreateArgs(t *testing.T) {
	cases := []struct {
		name        string
		cgroupsPath string
		wantGlobal  []string
	}{
		{"cgroupfs", "/crib/pod/ctr", nil},
		{"systemd", "crib-pod.slice:crib:ctr", []string{"--systemd-cgroup"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRunner{pid: "4242\n"}
			r, bundle := newTestRuntime(t, f)
			c, err := r.Create("ctr", bundle, testSpec(tc.cgroupsPath), task.IO{})
			if err != nil {
				t.Fatal(err)
			}
			if c.Pid() != 4242 {
				t.Errorf("pid %d, want 4242", c.Pid())
			}
			want := append([]string{"/usr/bin/crun", "--root", "/run/crib/runtimes/crun", "--log", filepath.Join(bundle, logName)}, tc.wantGlobal...)
			want = append(want, "create", "--bundle", bundle, "--pid-file", filepath.Join(bundle, pidName), "ctr")
			if !reflect.DeepEqual(f.calls[0], want) {
				t.Errorf("create ran\n %q\nwant\n %q", f.calls[0], want)
			}
			data, err := os.ReadFile(filepath.Join(bundle, configName))
			if err != nil {
				t.Fatal(err)
			}
			var got specs.Spec
			if err := json.Unmarshal(data, &got); err != nil || got.Root.Path != "/rootfs" || got.Linux.CgroupsPath != tc.cgroupsPath || got.Version != bundleOCIVersion {
				t.Errorf("config.json %s (%v)", data, err)
			}
		})
	}
}

// TestCreateFailure: a failed create quotes the runtime's log and has the
// runtime delete whatever it left.
func TestCreateFailure(t *testing.T) {
	f := &fakeRunner{fail: map[string]error{"create": errors.New("exit status 1")}}
	r, bundle := newTestRuntime(t, f)
	log := `{"level":"error","msg":"mount proc: operation not permitted","time":"x"}` + "\n"
	if err := os.WriteFile(filepath.Join(bundle, logName), []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := r.Create("ctr", bundle, testSpec("/crib/ctr"), task.IO{})
	if err == nil || !strings.Contains(err.Error(), "mount proc: operation not permitted") || !strings.Contains(err.Error(), "crun create") {
		t.Fatalf("error %v, want the handler, the command and the log's message", err)
	}
	if len(f.calls) != 2 || commandOf(f.calls[1][1:]) != "delete" {
		t.Fatalf("calls %q, want create then delete", f.calls)
	}
}

func TestCommands(t *testing.T) {
	f := &fakeRunner{pid: "7"}
	r, bundle := newTestRuntime(t, f)
	c, err := r.Create("ctr", bundle, testSpec("/crib/ctr"), task.IO{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func() error
		want []string
	}{
		{"start", c.Exec, []string{"start", "ctr"}},
		{"kill", func() error { return c.Signal(unix.SIGTERM) }, []string{"kill", "ctr", "15"}},
		{"delete", c.Destroy, []string{"delete", "--force", "ctr"}},
		{"update", func() error { return c.Update(&specs.LinuxResources{}) }, []string{"update", "--resources"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.calls = nil
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			got := f.calls[0][5:] // after the binary and the global options
			if !reflect.DeepEqual(got[:len(tc.want)], tc.want) {
				t.Errorf("ran %q, want %q", got, tc.want)
			}
		})
	}
}

// TestExecArgs: exec runs detached with a process file holding the init's
// identity and the new args, and a terminal's size when there is one.
func TestExecArgs(t *testing.T) {
	f := &fakeRunner{pid: "9"}
	r, bundle := newTestRuntime(t, f)
	c, err := r.Create("ctr", bundle, testSpec("/crib/ctr"), task.IO{})
	if err != nil {
		t.Fatal(err)
	}
	var proc specs.Process
	f.calls = nil
	r.Run = func(path string, args []string, files Files) ([]byte, error) {
		for i, a := range args {
			if a == "--process" {
				data, _ := os.ReadFile(args[i+1])
				_ = json.Unmarshal(data, &proc)
			}
		}
		return f.run(path, args, files)
	}
	p, err := c.Run([]string{"ls", "/"}, task.IO{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid() != 9 {
		t.Errorf("pid %d, want 9", p.Pid())
	}
	args := f.calls[0][5:]
	if args[0] != "exec" || args[1] != "--process" || args[3] != "--detach" || args[4] != "--pid-file" || args[len(args)-1] != "ctr" {
		t.Errorf("exec ran %q", args)
	}
	if !reflect.DeepEqual(proc.Args, []string{"ls", "/"}) || proc.User.UID != 1000 || proc.Env[0] != "A=b" || proc.Terminal {
		t.Errorf("process %+v, want the init's identity with the new args", proc)
	}
	if entries, _ := filepath.Glob(filepath.Join(bundle, "exec-*")); len(entries) != 0 {
		t.Errorf("exec files left: %v", entries)
	}
}

func TestParseState(t *testing.T) {
	cases := []struct {
		name, out  string
		wantStatus specs.ContainerState
		wantPid    int
		wantErr    bool
	}{
		{"runc", `{"ociVersion":"1.0.2-dev","id":"ctr","pid":42,"status":"running","bundle":"/b","rootfs":"/r","created":"2026-01-01T00:00:00Z","owner":""}`, specs.StateRunning, 42, false},
		{"crun stopped", `{"ociVersion":"1.0.0","id":"ctr","pid":0,"status":"stopped","bundle":"/b"}`, specs.StateStopped, 0, false},
		{"garbage", `container "ctr" does not exist`, "", 0, true},
		{"no status", `{"id":"ctr"}`, "", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parseState([]byte(tc.out))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (st.Status != tc.wantStatus || st.Pid != tc.wantPid) {
				t.Errorf("state %+v", st)
			}
		})
	}
}

// TestSignalNotRunning: a kill the runtime refuses for a stopped container
// is task.ErrNotRunning; another failure is the runtime's error.
func TestSignalNotRunning(t *testing.T) {
	cases := []struct {
		name    string
		state   string
		stateEr error
		want    error
	}{
		{"stopped", `{"id":"ctr","status":"stopped"}`, nil, task.ErrNotRunning},
		{"gone", "", errors.New("exit status 1"), task.ErrNotRunning},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeRunner{pid: "7", out: map[string]string{"state": tc.state},
				fail: map[string]error{"state": tc.stateEr}}
			r, bundle := newTestRuntime(t, f)
			c, err := r.Create("ctr", bundle, testSpec("/crib/ctr"), task.IO{})
			if err != nil {
				t.Fatal(err)
			}
			f.fail["kill"] = errors.New("exit status 1")
			if err := c.Signal(unix.SIGKILL); !errors.Is(err, tc.want) {
				t.Errorf("Signal: %v, want %v", err, tc.want)
			}
		})
	}
	f := &fakeRunner{pid: "7", out: map[string]string{"state": `{"id":"ctr","status":"running"}`}}
	r, bundle := newTestRuntime(t, f)
	c, err := r.Create("ctr", bundle, testSpec("/crib/ctr"), task.IO{})
	if err != nil {
		t.Fatal(err)
	}
	f.fail = map[string]error{"kill": errors.New("exit status 1")}
	if err := c.Signal(unix.SIGKILL); err == nil || errors.Is(err, task.ErrNotRunning) {
		t.Errorf("Signal of a running container the runtime failed to kill: %v", err)
	}
}

func TestLastLogLine(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"{\"msg\":\"first\"}\n{\"level\":\"error\",\"msg\":\"second\"}\n": "second",
		"plain text error\n": "plain text error",
	}
	for content, want := range cases {
		p := filepath.Join(dir, "log")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := lastLogLine(p); got != want {
			t.Errorf("lastLogLine(%q) = %q, want %q", content, got, want)
		}
	}
	if got := lastLogLine(filepath.Join(dir, "none")); got != "" {
		t.Errorf("missing log: %q", got)
	}
}

func TestParseFeatures(t *testing.T) {
	cases := []struct {
		name, out string
		want      Features
		wantErr   bool
	}{
		{"runc 1.1: rro, no idmap mounts", `{"ociVersionMin":"1.0.0","mountOptions":["ro","rro","rbind"],"linux":{"namespaces":["mount","user"]}}`, Features{RecursiveReadOnlyMounts: true}, false},
		{"runc 1.2: both", `{"mountOptions":["rro"],"linux":{"namespaces":["user"],"mountExtensions":{"idmap":{"enabled":true}}}}`, Features{RecursiveReadOnlyMounts: true, UserNamespaces: true}, false},
		{"idmap without user namespaces", `{"linux":{"namespaces":["mount"],"mountExtensions":{"idmap":{"enabled":true}}}}`, Features{}, false},
		{"idmap disabled", `{"linux":{"namespaces":["user"],"mountExtensions":{"idmap":{"enabled":false}}}}`, Features{}, false},
		{"not JSON", `unknown command features`, Features{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFeatures([]byte(tc.out))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %+v, %v; want %+v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestRuntimeEnv: the runtime never sees NOTIFY_SOCKET (cribd's, from
// systemd), with which runc and crun make start wait for the container's
// READY=1; the rest of the environment passes.
func TestRuntimeEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want []string
	}{
		{"none", []string{"PATH=/usr/bin", "HOME=/root"}, []string{"PATH=/usr/bin", "HOME=/root"}},
		{"dropped", []string{"PATH=/usr/bin", "NOTIFY_SOCKET=/run/systemd/notify", "HOME=/root"}, []string{"PATH=/usr/bin", "HOME=/root"}},
		{"only", []string{"NOTIFY_SOCKET=@/org/freedesktop/systemd1/notify"}, []string{}},
		{"similar name kept", []string{"NOTIFY_SOCKET_X=1", "X_NOTIFY_SOCKET=2"}, []string{"NOTIFY_SOCKET_X=1", "X_NOTIFY_SOCKET=2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runtimeEnv(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("runtimeEnv(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestExecRunnerDropsNotifySocket: a runtime command run for real gets the
// shim's environment without NOTIFY_SOCKET.
func TestExecRunnerDropsNotifySocket(t *testing.T) {
	env, err := exec.LookPath("env")
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("CRIB_OCICLI_TEST", "kept")
	out, err := execRunner(env, nil, Files{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "NOTIFY_SOCKET=") || !strings.Contains(string(out), "CRIB_OCICLI_TEST=kept") {
		t.Errorf("the runtime's environment:\n%s\nwant CRIB_OCICLI_TEST and no NOTIFY_SOCKET", out)
	}
}
