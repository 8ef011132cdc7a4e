package harness

// Containerd runs containerd 2.4.2 (scripts/build-containerd.sh) with its
// CRI plugin and runc on throwaway directories, for the side-by-side
// benchmarks (tests/integration at the CRI, tests/e2e under kubelet).
// Everything it makes lives under its temp dir (root, state, sockets, shim
// sockets, runc root, netns pins), under its own cgroup parent, bridge and
// subnet, so cleanup can tell its leftovers from anyone else's.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerdVersion is what scripts/build-containerd.sh builds by default.
const ContainerdVersion = "v2.4.2"

// Containerd is one running containerd; StartContainerd makes it.
type Containerd struct {
	t testing.TB

	BinDir       string // containerd, containerd-shim-runc-v2, runc
	Dir          string
	Socket       string
	ConfigPath   string
	LogPath      string
	ConfDir      string
	IPAMDataDir  string
	CgroupParent string // a path under cgroupfs, a slice under systemd
	Systemd      bool   // SystemdCgroup = true
	Bridge       string
	SubnetPrefix string // "10.87.<n>."

	proc *Process
	conn *grpc.ClientConn

	hadRunDir bool // /run/containerd existed before the start
}

// containerdRunDir is containerd's default state dir; the config moves
// everything out of it, and cleanup checks that nothing went there.
const containerdRunDir = "/run/containerd"

// ContainerdBinDir is where scripts/build-containerd.sh put the binaries.
func ContainerdBinDir() string {
	if d := os.Getenv("CRIB_CONTAINERD_DIR"); d != "" {
		return d
	}
	dir := os.Getenv("CRIB_TOOLS_DIR")
	if dir == "" {
		dir = "/var/cache/crib/tools"
	}
	return filepath.Join(dir, "containerd-"+ContainerdVersion)
}

// ContainerdOptions say where one containerd pulls from and which network
// it gets.
type ContainerdOptions struct {
	// RegistryAddr is the loopback registry (host:port) every mirrored
	// registry (MirroredRegistries) is rewritten to.
	RegistryAddr string
	// Octet N picks the bridge ctrdit<N> and the subnet 10.87.<N>.0/24;
	// use the test binary's Network.Octet so that concurrent test binaries
	// do not share them.
	Octet int
	// SystemdCgroup runs containerd's runc with SystemdCgroup = true (the
	// systemd cgroup driver, as kubeadm's nodes have it): pods then go in
	// the slice CgroupParent names, each container in a transient scope.
	// Only on a host with systemd as PID 1 (tests/node's guest).
	SystemdCgroup bool
}

// StartContainerd starts containerd with the CRI plugin, the harness's kind
// of bridge+portmap conflist (on its own bridge and subnet), sandbox image
// registry.k8s.io/pause:3.9, cgroupfs (or systemd: opts.SystemdCgroup),
// and every mirrored registry
// rewritten to opts.RegistryAddr, and waits until its CRI is ready;
// t.Cleanup removes its pods, stops it and fails the test naming anything
// it left behind.
func StartContainerd(t testing.TB, opts ContainerdOptions) *Containerd {
	t.Helper()
	bin := ContainerdBinDir()
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("%v (run scripts/build-containerd.sh, or set CRIB_CONTAINERD_DIR)", err)
		}
	}
	// Short, under /tmp: the shim socket dir must be at most 42 bytes.
	dir, err := os.MkdirTemp("/tmp", "crib-ctrd-")
	if err == nil {
		// As for cribd: a pod's root in its own user namespace must
		// search its way down to its root filesystem.
		err = os.Chmod(dir, 0o711)
	}
	if err != nil {
		t.Fatal(err)
	}
	d := &Containerd{
		t:            t,
		BinDir:       bin,
		Dir:          dir,
		Socket:       filepath.Join(dir, "containerd.sock"),
		ConfigPath:   filepath.Join(dir, "config.toml"),
		LogPath:      filepath.Join(dir, "containerd.log"),
		ConfDir:      filepath.Join(dir, "net.d"),
		IPAMDataDir:  filepath.Join(dir, "ipam"),
		CgroupParent: "/crib-ctrd-" + RandomHex(4),
		Systemd:      opts.SystemdCgroup,
		Bridge:       fmt.Sprintf("ctrdit%d", opts.Octet),
		SubnetPrefix: fmt.Sprintf("10.87.%d.", opts.Octet),
	}
	if d.Systemd {
		// No dash in the name: systemd reads a dash as a parent slice,
		// and this one sits right below the root slice.
		d.CgroupParent = "cribctrd" + RandomHex(4) + ".slice"
	}
	_, err = os.Stat(containerdRunDir)
	d.hadRunDir = err == nil
	t.Cleanup(d.cleanup)

	for _, sub := range []string{d.ConfDir, d.IPAMDataDir} {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The network is named after the bridge, so that the result cache
	// files below are this instance's only, with another suite's
	// containerd running.
	conflist := strings.NewReplacer(`"name": "cribit"`, fmt.Sprintf(`"name": %q`, d.Bridge),
		"@BRIDGE@", d.Bridge, "@SUBNET@", d.SubnetPrefix+"0/24", "@IPAM_DIR@", d.IPAMDataDir).Replace(DefaultConflist)
	d.write(filepath.Join(d.ConfDir, "10-ctrdit.conflist"), conflist)
	// hosts.toml per registry: `server` replaces the upstream host, so a
	// pull never leaves the machine.
	for _, reg := range MirroredRegistries {
		d.write(filepath.Join(dir, "certs.d", reg, "hosts.toml"), fmt.Sprintf("server = \"http://%s\"\n", opts.RegistryAddr))
	}
	d.write(d.ConfigPath, d.config())

	cmd := exec.Command(filepath.Join(bin, "containerd"), "--config", d.ConfigPath)
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	d.proc = StartProcess(t, "containerd", cmd, d.LogPath)

	d.conn, err = grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	rt := d.Runtime()
	d.proc.WaitReady(t, 30*time.Second, "containerd's CRI reports RuntimeReady and NetworkReady", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			return false, err.Error()
		}
		// Only these two: a third condition reports deprecation
		// warnings (cgroup v1 here).
		for _, c := range st.GetStatus().GetConditions() {
			if (c.Type == runtimeapi.RuntimeReady || c.Type == runtimeapi.NetworkReady) && !c.Status {
				return false, c.Type + ": " + c.Reason + ": " + c.Message
			}
		}
		return true, ""
	})
	return d
}

func (d *Containerd) write(path, body string) {
	d.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// config is containerd's config.toml (version 4, 2.4's current: the
// gRPC and ttrpc servers are plugins). NRI is off (it would
// listen on /var/run/nri); the OOM score of pods is clamped to containerd's
// own (root here lacks CAP_SYS_RESOURCE to lower it, and CRI gives the
// sandbox -998); cgroupfs unless d.Systemd; netns pins under the state dir;
// shim sockets, runc's root, opt and CDI dirs under the temp dir too.
func (d *Containerd) config() string {
	return ContainerdConfig(d.Dir, d.Socket, d.BinDir, d.ConfDir, d.Systemd)
}

// ContainerdConfig is the config of a containerd whose files all live
// under dir, listening on socket, running runc from binDir with the CNI
// configs of confDir (see Containerd.config). The cluster test's flannel
// node runs its containerd with it too.
func ContainerdConfig(dir, socket, binDir, confDir string, systemd bool) string {
	return fmt.Sprintf(`version = 4
root = %[1]q
state = %[2]q

[debug]
  level = "info"

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = %[3]q
  [plugins.'io.containerd.server.v1.ttrpc']
    address = %[4]q
  [plugins.'io.containerd.internal.v1.opt']
    path = %[5]q
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.shim.v1.manager']
    socket_dir = %[6]q
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "registry.k8s.io/pause:3.9"
    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = %[7]q
  [plugins.'io.containerd.cri.v1.runtime']
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    cdi_spec_dirs = [%[12]q]
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = %[8]q
          Root = %[9]q
          SystemdCgroup = %[13]t
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%[10]q]
      conf_dir = %[11]q
      max_conf_num = 1
`,
		filepath.Join(dir, "root"), filepath.Join(dir, "state"),
		socket, socket+".ttrpc",
		filepath.Join(dir, "opt"), filepath.Join(dir, "s"), filepath.Join(dir, "certs.d"),
		filepath.Join(binDir, "runc"), filepath.Join(dir, "runc"),
		StdCNIDir, confDir, filepath.Join(dir, "cdi"), systemd)
}

// Runtime is a CRI runtime service client on containerd's socket.
func (d *Containerd) Runtime() runtimeapi.RuntimeServiceClient {
	return runtimeapi.NewRuntimeServiceClient(d.conn)
}

// Images is a CRI image service client on containerd's socket.
func (d *Containerd) Images() runtimeapi.ImageServiceClient {
	return runtimeapi.NewImageServiceClient(d.conn)
}

// PID is containerd's process ID.
func (d *Containerd) PID() int { return d.proc.PID() }

// Log returns containerd's log so far.
func (d *Containerd) Log() string { return ReadFile(d.LogPath) }

// ShimPIDs are the running containerd-shim-runc-v2 processes serving this
// containerd (their command line names its socket).
func (d *Containerd) ShimPIDs() []int {
	var out []int
	for _, pid := range allPIDs() {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if filepath.Base(exe) != "containerd-shim-runc-v2" {
			continue
		}
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), d.Socket) {
			out = append(out, pid)
		}
	}
	return out
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// cleanup removes the pods containerd still has, stops it, then looks for
// what it left: processes, mounts under its dir, cgroups under its parent,
// veths on its bridge, nat chains and IP leases of its subnet. Each is a
// test failure, and is removed.
func (d *Containerd) cleanup() {
	t := d.t
	if d.proc != nil && d.proc.Running() {
		rt := d.Runtime()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.Items {
				if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					t.Errorf("containerd cleanup: StopPodSandbox %s: %v", p.Id, err)
				}
				if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					t.Errorf("containerd cleanup: RemovePodSandbox %s: %v", p.Id, err)
				}
			}
		} else {
			t.Errorf("containerd cleanup: ListPodSandbox: %v", err)
		}
		cancel()
		d.proc.Stop(t, 15*time.Second)
	} else if d.proc != nil {
		t.Errorf("containerd exited during the test: %v", d.proc.ExitErr())
	}
	if d.conn != nil {
		d.conn.Close()
	}

	var leaked []string
	leaked = append(leaked, d.killProcesses()...)
	leaked = append(leaked, d.unmountAll()...)
	leaked = append(leaked, d.removeCgroups()...)
	leaked = append(leaked, d.removeNetwork()...)
	if _, err := os.Stat(containerdRunDir); err == nil && !d.hadRunDir {
		leaked = append(leaked, "directory "+containerdRunDir)
		_ = os.RemoveAll(containerdRunDir)
	}
	if len(leaked) > 0 {
		t.Errorf("containerd left behind:\n  %s", strings.Join(leaked, "\n  "))
	}
	if d.proc != nil {
		d.proc.LogOnFailure(t, 200)
	}
	if !keepDirs() {
		if err := os.RemoveAll(d.Dir); err != nil {
			t.Errorf("containerd cleanup: %v", err)
		}
	} else {
		t.Logf("CRIB_IT_KEEP/CRIB_E2E_KEEP set: keeping %s", d.Dir)
	}
}

// killProcesses kills any process whose command line or environment names
// the temp dir or that sits in the cgroup parent (shims, runc, pause,
// containers), and lists them.
func (d *Containerd) killProcesses() []string {
	var out []string
	self := os.Getpid()
	for _, pid := range allPIDs() {
		if pid == self {
			continue
		}
		if _, state := ProcStat(pid); state == "Z" || state == "" {
			continue
		}
		mine := false
		for _, f := range []string{"cmdline", "environ"} {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f)); err == nil && strings.Contains(string(b), d.Dir) {
				mine = true
			}
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil && strings.Contains(string(b), d.CgroupParent+"/") {
			mine = true
		}
		if !mine {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, fmt.Sprintf("process %d: %s", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return out
}

// unmountAll detaches every mount below the temp dir, deepest first.
func (d *Containerd) unmountAll() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], d.Dir+"/") {
			points = append(points, f[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var out []string
	for _, p := range points {
		out = append(out, "mount "+p)
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			d.t.Logf("containerd cleanup: umount %s: %v", p, err)
		}
	}
	return out
}

// removeCgroups removes the cgroup parent in every hierarchy; a cgroup
// below it is a leak (the parent itself is runc's to create, not to remove).
// Under systemd the parent is a slice: a scope left in it is a leak, and
// stopping the slice removes it and them.
func (d *Containerd) removeCgroups() []string {
	var out []string
	if d.Systemd {
		dir := filepath.Join("/sys/fs/cgroup", d.CgroupParent)
		_ = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() && path != dir {
				out = append(out, "cgroup "+path)
				return filepath.SkipDir
			}
			return nil
		})
		if b, err := exec.Command("systemctl", "stop", d.CgroupParent).CombinedOutput(); err != nil {
			d.t.Logf("containerd cleanup: systemctl stop %s: %v: %s", d.CgroupParent, err, b)
		}
		return out
	}
	for _, dir := range RemoveCgroupTree(d.CgroupParent) {
		out = append(out, "cgroup "+dir)
	}
	return out
}

// removeNetwork deletes the bridge, and lists and removes any veth on it,
// nat chain for the subnet and host-local lease left behind.
func (d *Containerd) removeNetwork() []string {
	var out []string
	if links, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output(); err == nil {
		for _, line := range strings.Split(string(links), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || !strings.Contains(line, " master "+d.Bridge+" ") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			out = append(out, "veth "+name)
			_ = exec.Command("ip", "link", "del", name).Run()
		}
	}
	if _, err := os.Stat("/sys/class/net/" + d.Bridge); err == nil {
		if b, err := exec.Command("ip", "link", "del", d.Bridge).CombinedOutput(); err != nil {
			d.t.Logf("containerd cleanup: ip link del %s: %v: %s", d.Bridge, err, b)
		}
	}
	if rules, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output(); err == nil {
		chains := PodChains(string(rules), d.SubnetPrefix)
		for _, c := range chains {
			out = append(out, "iptables -t nat chain "+c)
		}
		removeNatChains(string(rules), chains)
	}
	// libcni's result cache (containerd sets no cache dir of its own).
	cached, _ := filepath.Glob("/var/lib/cni/results/" + d.Bridge + "-*")
	for _, f := range cached {
		out = append(out, "CNI result cache "+f)
		_ = os.Remove(f)
	}
	_ = filepath.WalkDir(d.IPAMDataDir, func(path string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			out = append(out, "IP lease "+path)
		}
		return nil
	})
	return out
}

// removeNatChains deletes the rules jumping to chains, then the chains.
func removeNatChains(rules string, chains []string) {
	if len(chains) == 0 {
		return
	}
	doomed := map[string]bool{}
	for _, c := range chains {
		doomed[c] = true
	}
	for _, line := range strings.Split(rules, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		for i := 0; i+1 < len(f); i++ {
			if (f[i] == "-j" || f[i] == "-g") && doomed[f[i+1]] && !doomed[f[1]] {
				// Through sh: -S quotes comments with spaces.
				_ = exec.Command("sh", "-c", "iptables -w -t nat -D "+strings.TrimPrefix(line, "-A ")).Run()
			}
		}
	}
	for _, c := range chains {
		_ = exec.Command("iptables", "-w", "-t", "nat", "-F", c).Run()
	}
	for _, c := range chains {
		_ = exec.Command("iptables", "-w", "-t", "nat", "-X", c).Run()
	}
}
