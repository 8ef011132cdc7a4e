//go:build e2e

package e2e

// Host-wide state kubelet changes at start, saved before and restored after:
// kernel sysctls, iptables chains it creates (KUBE-*), its cgroup tree and
// /var/log/containers symlinks.

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// kubeletSysctls are the tunables kubelet's container manager sets
// (setupKernelTunables, protectKernelDefaults=false).
var kubeletSysctls = []string{
	"vm.overcommit_memory",
	"vm.panic_on_oom",
	"kernel.panic",
	"kernel.panic_on_oops",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

// saveSysctls reads kubeletSysctls and registers their restoration.
func saveSysctls(t *testing.T) {
	t.Helper()
	saved := map[string]string{}
	for _, name := range kubeletSysctls {
		b, err := os.ReadFile(sysctlPath(name))
		if err != nil {
			t.Logf("sysctl %s: %v (not restored)", name, err)
			continue
		}
		saved[name] = strings.TrimSpace(string(b))
	}
	t.Cleanup(func() {
		for name, v := range saved {
			cur, _ := os.ReadFile(sysctlPath(name))
			if strings.TrimSpace(string(cur)) == v {
				continue
			}
			if err := os.WriteFile(sysctlPath(name), []byte(v+"\n"), 0o644); err != nil {
				t.Errorf("restore sysctl %s=%s: %v", name, v, err)
			} else {
				t.Logf("restored sysctl %s=%s (kubelet had set %s)", name, v, strings.TrimSpace(string(cur)))
			}
		}
	})
}

var iptablesTables = []string{"filter", "nat", "mangle"}

// kubeChains lists the KUBE-* chains per "<binary> <table>".
func kubeChains() map[string]bool {
	chains := map[string]bool{}
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range iptablesTables {
			out, err := exec.Command(bin, "-w", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) >= 2 && f[0] == "-N" && strings.HasPrefix(f[1], "KUBE-") {
					chains[bin+" "+table+" "+f[1]] = true
				}
			}
		}
	}
	return chains
}

// saveIPTables records the KUBE-* chains present now and registers the
// removal of those kubelet adds (the jumps to them first, then the chains).
func saveIPTables(t *testing.T) {
	t.Helper()
	before := kubeChains()
	t.Cleanup(func() {
		var added []string
		for c := range kubeChains() {
			if !before[c] {
				added = append(added, c)
			}
		}
		sort.Strings(added)
		if len(added) > 0 {
			t.Logf("removing iptables chains kubelet created: %s", strings.Join(added, ", "))
		}
		for _, c := range added {
			f := strings.Fields(c)
			bin, table, chain := f[0], f[1], f[2]
			out, _ := exec.Command(bin, "-w", "-t", table, "-S").Output()
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, "-A ") && strings.Contains(line, " -j "+chain) {
					args := append([]string{"-w", "-t", table, "-D"}, strings.Fields(line)[1:]...)
					if o, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
						t.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, o)
					}
				}
			}
		}
		for _, c := range added {
			f := strings.Fields(c)
			exec.Command(f[0], "-w", "-t", f[1], "-F", f[2]).Run()
		}
		for _, c := range added {
			f := strings.Fields(c)
			if o, err := exec.Command(f[0], "-w", "-t", f[1], "-X", f[2]).CombinedOutput(); err != nil {
				t.Errorf("%s -t %s -X %s: %v: %s", f[0], f[1], f[2], err, o)
			}
		}
	})
}

// cgroupDirs are path's directories in every mounted v1 hierarchy.
func cgroupDirs(path string) []string {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", path))
	return dirs
}

// cgroupChildren lists the directories below path in every hierarchy.
func cgroupChildren(path string) []string {
	var out []string
	for _, root := range cgroupDirs(path) {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != root {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// removeContainerLogLinks removes the /var/log/containers symlinks kubelet
// made to files under dir, and the directory itself if it made it.
func removeContainerLogLinks(t *testing.T, dir string, hadDir bool) {
	const links = "/var/log/containers"
	ents, _ := os.ReadDir(links)
	for _, e := range ents {
		p := filepath.Join(links, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
			os.Remove(p)
		}
	}
	if !hadDir {
		os.Remove(links) // only when empty
	}
}
