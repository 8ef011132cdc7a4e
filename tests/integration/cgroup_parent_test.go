//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cgroupDirsOf lists path (below each hierarchy's root) in every mounted
// cgroup hierarchy: the v1 controllers and a cgroup2 below /sys/fs/cgroup,
// or a cgroup2 at it.
func cgroupDirsOf(path string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", path))
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", path, "cgroup.procs")); err == nil {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", path))
	}
	return dirs
}

// mkdirCgroup makes path in every v1 hierarchy, as kubelet makes its pod
// cgroups, copying cpuset's cpus and mems from the root.
func mkdirCgroup(t *testing.T, path string) {
	t.Helper()
	ents, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		h := filepath.Join("/sys/fs/cgroup", e.Name())
		var p string
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			p = filepath.Join(p, part)
			dir := filepath.Join(h, p)
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				t.Fatal(err)
			}
			if e.Name() == "cpuset" {
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					b, _ := os.ReadFile(filepath.Join(h, f))
					_ = os.WriteFile(filepath.Join(dir, f), b, 0o644)
				}
			}
		}
	}
}

// TestCgroupParentsGoWithThePod: the cgroup parents cribd made for a pod,
// ancestors included, go with it (the harness's own parent, which cribd
// made for the first pod, with the last one); an ancestor that existed
// before (kubelet's) stays; and a restart of cribd after its shim and
// itself were killed still removes what it made (the ledger is on disk).
func TestCgroupParentsGoWithThePod(t *testing.T) {
	h, _ := imageHarness(t, "", "")
	h.Crictl("pull", "busybox")
	if dirs := cgroupDirsOf(h.CgroupParent); len(dirs) != 0 {
		t.Fatalf("the harness's parent exists before any pod: %v", dirs)
	}

	// A pod in the default parent and one in a kubelet-style parent below
	// it that nobody made: cribd makes /kubepods, /kubepods/besteffort and
	// the pod's own.
	plain := h.RunPod(podConfig("cgplain"))
	kubeParent := h.CgroupParent + "/kubepods/besteffort/pod1234"
	kpod := podConfig("cgkube")
	kpod["linux"] = map[string]any{"cgroup_parent": kubeParent}
	kpod["log_directory"] = filepath.Join(h.Dir, "logs")
	kube := h.RunPod(kpod)
	ctr := h.CreateContainer(kube, shellContainer("sleeper", "exec sleep 600"), kpod)
	h.Crictl("start", ctr)
	h.waitContainerState(ctr, "CONTAINER_RUNNING")
	if dirs := cgroupDirsOf(kubeParent + "/" + ctr); len(dirs) == 0 {
		t.Fatalf("container %s has no cgroup under %s", ctr[:12], kubeParent)
	}

	h.Crictl("stopp", kube)
	h.Crictl("rmp", kube)
	if dirs := cgroupDirsOf(h.CgroupParent + "/kubepods"); len(dirs) != 0 {
		t.Errorf("the kubelet-style parent cribd made is left after its pod: %v", dirs)
	}
	if dirs := cgroupDirsOf(h.CgroupParent); len(dirs) == 0 {
		t.Errorf("the default parent went while pod %s is in it", plain[:12])
	}
	h.Crictl("stopp", plain)
	h.Crictl("rmp", plain)
	if dirs := cgroupDirsOf(h.CgroupParent); len(dirs) != 0 {
		t.Errorf("the default parent cribd made is left after its last pod: %v", dirs)
	}

	// kubelet made /existing: it stays, the pod's parent below it goes.
	existing := h.CgroupParent + "/existing"
	mkdirCgroup(t, existing)
	epod := podConfig("cgexisting")
	epod["linux"] = map[string]any{"cgroup_parent": existing + "/pod5678"}
	e := h.RunPod(epod)
	h.Crictl("stopp", e)
	h.Crictl("rmp", e)
	if dirs := cgroupDirsOf(existing + "/pod5678"); len(dirs) != 0 {
		t.Errorf("the parent cribd made below an existing cgroup is left: %v", dirs)
	}
	if dirs := cgroupDirsOf(existing); len(dirs) == 0 {
		t.Errorf("cribd removed %s, which it did not make", existing)
	}
	rmdirCgroup(existing)
	rmdirCgroup(h.CgroupParent)

	// cribd and the pod's shim die; a new cribd removes the parents.
	k9 := podConfig("cgkill")
	k9Parent := h.CgroupParent + "/kubepods/burstable/pod9"
	k9["linux"] = map[string]any{"cgroup_parent": k9Parent}
	k := h.RunPod(k9)
	shimPID, err := os.ReadFile(filepath.Join(h.RunDir, "pods", k, "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	h.Kill()
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(shimPID))); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	h.Start()
	h.Crictl("stopp", k)
	h.Crictl("rmp", k)
	if dirs := cgroupDirsOf(h.CgroupParent); len(dirs) != 0 {
		t.Errorf("after cribd and the shim were killed, the parents cribd made are left: %v", dirs)
	}
}

// rmdirCgroup removes path, when empty, in every hierarchy.
func rmdirCgroup(path string) {
	for _, d := range cgroupDirsOf(path) {
		_ = syscall.Rmdir(d)
	}
}

// TestCgroupParentDriverMismatch: a cgroup parent that does not fit the
// cgroupfs driver (a systemd slice, a relative path) is InvalidArgument
// naming linux.cgroup_parent, and leaves nothing.
func TestCgroupParentDriverMismatch(t *testing.T) {
	h := start(t, Options{})
	c := h.client()
	ctx := ctx30(t)
	for _, parent := range []string{"kubepods-besteffort-pod1234.slice", "kubepods/besteffort/pod1234"} {
		_, err := c.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "cgbad", Uid: "uid-cgbad-" + randomHex(3), Namespace: "crib-it"},
			Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: parent},
		}})
		wantCode(t, "RunPodSandbox with cgroup parent "+parent, err, codes.InvalidArgument, "linux.cgroup_parent")
		if dirs := cgroupDirsOf(parent); len(dirs) != 0 {
			t.Errorf("cgroup parent %s made: %v", parent, dirs)
		}
	}
	if pods := h.Pods(); len(pods) != 0 {
		t.Errorf("crictl pods lists %v after rejected requests", pods)
	}
	ents, _ := os.ReadDir(filepath.Join(h.RootDir, "pods"))
	if len(ents) != 0 {
		t.Errorf("pod records left: %v", ents)
	}
}

// TestSystemdDriverWithoutSystemd: on a host not booted with systemd,
// cribd with cgroup_driver = "systemd" stops at start, naming the key and
// the reason, before it makes anything.
func TestSystemdDriverWithoutSystemd(t *testing.T) {
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		t.Skip("this host runs systemd")
	}
	// Short: run_dir has room for the shims' socket paths.
	dir, err := os.MkdirTemp("/tmp", "crib-sd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "crib.toml")
	root := filepath.Join(dir, "root")
	body := "root_dir = \"" + root + "\"\nrun_dir = \"" + filepath.Join(dir, "run") + "\"\n[grpc]\nsocket = \"" +
		filepath.Join(dir, "run", "crib.sock") + "\"\n[runtime]\ncgroup_driver = \"systemd\"\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir(), "cribd"), "--config", cfg)
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("cribd with the systemd driver still runs after 30s:\n%s", out)
	}
	if err == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("cribd with the systemd driver exited 0 on a host without systemd:\n%s", out)
	}
	for _, want := range []string{`"runtime.cgroup_driver"`, "PID 1", "/run/systemd/system"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cribd's message %q does not name %q", strings.TrimSpace(string(out)), want)
		}
	}
	if _, err := os.Stat(root); err == nil {
		t.Errorf("cribd made its root dir %s before refusing the driver", root)
	}
}
