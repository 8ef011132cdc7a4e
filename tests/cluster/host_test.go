//go:build cluster

package cluster

// Host state the cluster changes and the teardown that restores it: kernel
// sysctls kubelet sets (host-wide, even from a network namespace),
// /var/log/containers links, the nodes' cgroup roots, namespaces and
// links, and the leak check over all of them.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/tests/harness"
)

// kubeletSysctls are the host-wide tunables kubelet's container manager
// sets (protectKernelDefaults false).
var kubeletSysctls = []string{
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// saveHost records what cleanup restores.
func (c *Cluster) saveHost() {
	c.sysctls = map[string]string{}
	for _, name := range kubeletSysctls {
		if b, err := os.ReadFile(sysctlPath(name)); err == nil {
			c.sysctls[name] = strings.TrimSpace(string(b))
		}
	}
	_, err := os.Stat("/var/log/containers")
	c.hadLogLinks = err == nil
}

// restoreHost puts back the sysctls and removes the log links to c.Dir.
func (c *Cluster) restoreHost() {
	for name, v := range c.sysctls {
		cur, _ := os.ReadFile(sysctlPath(name))
		if strings.TrimSpace(string(cur)) != v {
			if err := os.WriteFile(sysctlPath(name), []byte(v+"\n"), 0o644); err != nil {
				c.t.Errorf("restore sysctl %s=%s: %v", name, v, err)
			}
		}
	}
	const links = "/var/log/containers"
	ents, _ := os.ReadDir(links)
	for _, e := range ents {
		p := filepath.Join(links, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, c.Dir+"/") {
			os.Remove(p)
		}
	}
	if !c.hadLogLinks {
		os.Remove(links) // only when empty
	}
}

// cgroupDirs are path's directories in every mounted hierarchy.
func cgroupDirs(path string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", path))
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", path)); err == nil {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", path))
	}
	return dirs
}

// cleanup tears the cluster down and fails the test naming what is left.
func (c *Cluster) cleanup() {
	t := c.t
	if t.Failed() {
		c.dump()
	}
	var leaks []string
	// Workloads first, through the API, as a user would: the kubelets
	// stop their pods and the runtimes remove them.
	if c.APIServer != "" && len(c.Nodes) > 0 {
		c.deleteWorkloads()
	}
	for i := len(c.Nodes) - 1; i >= 0; i-- {
		n := c.Nodes[i]
		for _, p := range []*harness.Process{n.proxy, n.kubelet} {
			if p == nil {
				continue
			}
			if p.Crashed() {
				t.Errorf("%s exited during the test: %v", p.Name, p.ExitErr())
			}
			if p.Running() && !p.Signal(syscall.SIGTERM, 20*time.Second) {
				t.Errorf("%s did not exit within 20s of SIGTERM", p.Name)
				p.Signal(syscall.SIGKILL, 10*time.Second)
			}
		}
		leaks = append(leaks, n.Kind.Stop(n)...)
	}
	for _, n := range c.Nodes {
		if out, err := exec.Command("ip", "netns", "delete", n.NS).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", n.NS, err, out)
		}
	}
	for i := len(c.controlPlane) - 1; i >= 0; i-- {
		p := c.controlPlane[i]
		if p.Crashed() {
			t.Errorf("%s exited during the test: %v", p.Name, p.ExitErr())
		}
		if p.Running() && !p.Signal(syscall.SIGTERM, 20*time.Second) {
			t.Errorf("%s did not exit within 20s of SIGTERM", p.Name)
			p.Signal(syscall.SIGKILL, 10*time.Second)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + c.Bridge); err == nil {
		if out, err := exec.Command("ip", "link", "del", c.Bridge).CombinedOutput(); err != nil {
			t.Errorf("ip link del %s: %v: %s", c.Bridge, err, out)
		}
	}
	// The kernel dismantles a deleted namespace (and the veth in it)
	// asynchronously: give what is left a few seconds to go.
	deadline := time.Now().Add(10 * time.Second)
	left := c.leaks()
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		left = c.leaks()
	}
	leaks = append(leaks, left...)
	for _, l := range leaks {
		t.Errorf("leak: %s", l)
	}
	c.forceCleanup()
	c.restoreHost()
	if os.Getenv("CRIB_CLUSTER_KEEP") != "" {
		t.Logf("CRIB_CLUSTER_KEEP set: keeping %s", c.Dir)
	} else if err := os.RemoveAll(c.Dir); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// leaks lists what the cluster left on the host once everything stopped:
// kubelet's QoS cgroups are its own (it keeps them across restarts) and
// are removed first; any other cgroup, process, mount, namespace or link
// of the test is a leak.
func (c *Cluster) leaks() []string {
	var out []string
	for _, n := range c.Nodes {
		for _, qos := range []string{"kubepods/besteffort", "kubepods/burstable", "kubepods"} {
			for _, d := range cgroupDirs(filepath.Join(n.CgroupRoot, qos)) {
				_ = os.Remove(d)
			}
		}
		for _, root := range cgroupDirs(n.CgroupRoot) {
			filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() {
					return nil
				}
				if p != root {
					out = append(out, "cgroup "+p)
				}
				if b, err := os.ReadFile(filepath.Join(p, "cgroup.procs")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
					out = append(out, fmt.Sprintf("processes in %s: %s", p, strings.Join(strings.Fields(string(b)), " ")))
				}
				return nil
			})
		}
	}
	for _, m := range mountsUnder(c.Dir) {
		// kubelet bind mounts its root dir onto itself (to make it
		// rshared) and leaves that mount when it exits.
		if filepath.Base(m) == "root" && filepath.Base(filepath.Dir(m)) == "kubelet" {
			continue
		}
		// cribd, as ip netns does, bind mounts its netns_dir onto itself
		// (shared, so pins propagate) and leaves that mount when it
		// exits; a pin below it is a leak.
		if filepath.Base(m) == "netns" && filepath.Base(filepath.Dir(m)) == "cribd" {
			continue
		}
		out = append(out, "mount "+m)
	}
	if b, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "ccl"+c.ID) {
				out = append(out, "network namespace "+f[0])
			}
		}
	}
	if b, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "ccl"+c.ID) {
				name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
				out = append(out, "link "+name)
			}
		}
	}
	for _, pid := range processesUnder(c.Dir) {
		out = append(out, fmt.Sprintf("process %d (%s)", pid, cmdline(pid)))
	}
	sort.Strings(out)
	return out
}

// forceCleanup removes whatever leaks found, so that one failed run does
// not poison the next.
func (c *Cluster) forceCleanup() {
	for _, pid := range processesUnder(c.Dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, n := range c.Nodes {
		_ = exec.Command("ip", "netns", "delete", n.NS).Run()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for _, d := range cgroupDirs(n.CgroupRoot) {
			if err := cgroup.RemoveTree(ctx, d); err != nil {
				c.t.Logf("cleanup: %v", err)
			}
		}
		cancel()
	}
	for _, m := range mountsUnder(c.Dir) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	_ = exec.Command("ip", "link", "del", c.Bridge).Run()
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append([]string{fields[4]}, out...)
		}
	}
	return out
}

// processesUnder lists the processes whose command line names a path
// below dir (the daemons and shims of the test: every path is there).
func processesUnder(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	self := os.Getpid()
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		if strings.Contains(cmdline(pid), dir+"/") {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
