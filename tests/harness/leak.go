package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Snapshot is what the leak checker compares: for each kind of resource, a
// key per item and a description naming it. A leak is an item present after
// a test and absent before it.
type Snapshot map[string]map[string]string

// The kinds of resource a Snapshot holds.
const (
	KindNetNS    = "netns pin"
	KindVeth     = "host veth link"
	KindMount    = "mount"
	KindCgroup   = "cgroup"
	KindProcess  = "process"
	KindIPAM     = "host-local allocation"
	KindIPTables = "iptables nat chain"
)

// Snapshot lists the host resources a pod can leave behind, restricted to
// this harness's where they can be told apart (cgroups under its parent,
// mounts of its temp dir, files of its IPAM dataDir, processes it owns) and
// to crib's names elsewhere (crib-* netns pins and mounts), and crib's own
// state: storage containers and layers, files under run_dir.
func (h *Cribd) Snapshot() Snapshot {
	s := Snapshot{}
	// Only this harness's pods count: other suites may run on the machine.
	ids := h.PodIDs()
	mine := func(id string) bool { return ids[id] }
	add := func(kind, key, desc string) {
		if s[kind] == nil {
			s[kind] = map[string]string{}
		}
		s[kind][key] = desc
	}

	// ip netns list: pins named crib-<id>.
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && strings.HasPrefix(f[0], "crib-") && mine(strings.TrimPrefix(f[0], "crib-")) {
				add(KindNetNS, f[0], "netns "+f[0]+" (ip netns list)")
			}
		}
	}
	if h.NetNSDir != "/var/run/netns" && h.NetNSDir != "/run/netns" {
		if ents, err := os.ReadDir(h.NetNSDir); err == nil {
			for _, e := range ents {
				add(KindNetNS, e.Name(), "netns pin "+filepath.Join(h.NetNSDir, e.Name()))
			}
		}
	}

	// Host veth links on this harness's bridge (a pod's veth that outlives
	// it stays attached there).
	if out, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || !strings.Contains(line, " master "+h.Bridge+" ") {
				continue
			}
			name := strings.TrimSuffix(f[1], ":")
			if i := strings.IndexByte(name, '@'); i >= 0 {
				name = name[:i]
			}
			add(KindVeth, name, "veth "+strings.TrimSpace(line))
		}
	}

	// Mounts mentioning the temp dir or crib-.
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, h.Dir) && !MentionsPod(line, ids) {
				continue
			}
			fields := strings.Fields(line)
			if len(fields) < 5 {
				continue
			}
			// Key: mount point and root; several mounts may stack.
			key := fields[4] + " " + fields[3]
			desc := "mount " + fields[4] + " (root " + fields[3] + ")"
			if layer := StoreMountLayer(fields[4]); layer != "" {
				desc += " of storage layer " + layer
			}
			add(KindMount, key, desc)
		}
		f.Close()
	}

	// Cgroup dirs under the harness's parent, in every hierarchy.
	parents, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(h.CgroupParent, "/")))
	for _, p := range parents {
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || path == p {
				return nil
			}
			add(KindCgroup, path, "cgroup dir "+path)
			return nil
		})
	}

	// crib-shim and crib-pause processes this harness owns.
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name := ProcessName(pid)
		if name != "crib-shim" && name != "crib-pause" {
			continue
		}
		start, state := ProcStat(pid)
		if state == "Z" {
			// A zombie has released everything but its PID; whether
			// it is reaped depends on PID 1, not on crib.
			continue
		}
		if !h.OwnsProcess(pid) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		add(KindProcess, fmt.Sprintf("%d/%s", pid, start),
			fmt.Sprintf("%s pid %d: %s", name, pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))))
	}

	// host-local's leases: files named by IP; lock and last_reserved_ip.*
	// stay after every release.
	_ = filepath.WalkDir(h.IPAMDataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		base := d.Name()
		if base == "lock" || strings.HasPrefix(base, "last_reserved_ip") {
			return nil
		}
		b, _ := os.ReadFile(path)
		add(KindIPAM, path, fmt.Sprintf("IP lease %s (%s)", path, strings.Join(strings.Fields(string(b)), " ")))
		return nil
	})

	// Per-pod nat chains of the bridge (ipMasq) and portmap plugins for the
	// harness's subnet; the shared CNI-HOSTPORT-* chains stay by design.
	if out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output(); err == nil {
		for _, chain := range PodChains(string(out), h.Network.Prefix) {
			add(KindIPTables, chain, "iptables -t nat chain "+chain)
		}
	}

	// crib's image store (containers, layers no image uses) and run_dir.
	h.storeSnapshot(add)
	return s
}

// PodChains returns the CNI-* chains (not CNI-HOSTPORT-*) of `iptables -S`
// output that have, or are jumped to by, a rule mentioning subnet.
func PodChains(rules, subnet string) []string {
	mentioned := map[string]bool{}
	var chains []string
	for _, line := range strings.Split(rules, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if f[0] == "-N" && strings.HasPrefix(f[1], "CNI-") && !strings.HasPrefix(f[1], "CNI-HOSTPORT-") {
			chains = append(chains, f[1])
		}
		if f[0] != "-A" || !strings.Contains(line, subnet) {
			continue
		}
		mentioned[f[1]] = true
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "-j" || f[i] == "-g" {
				mentioned[f[i+1]] = true
			}
		}
	}
	var out []string
	for _, c := range chains {
		if mentioned[c] {
			out = append(out, c)
		}
	}
	return out
}

// ProcStat returns the start time (field 22) and state (field 3) of pid.
func ProcStat(pid int) (start, state string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", ""
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 20 {
		return "", ""
	}
	return f[19], f[0]
}

// OwnsProcess tells whether a crib process belongs to this harness: its
// command line, working directory, environment or open files mention the
// harness's temp dir, or its cgroups are under the harness's parent. Other
// engineers' cribd instances on the same machine stay out of the count.
func (h *Cribd) OwnsProcess(pid int) bool {
	base := fmt.Sprintf("/proc/%d/", pid)
	for _, f := range []string{"cmdline", "environ"} {
		if b, err := os.ReadFile(base + f); err == nil && strings.Contains(string(b), h.Dir) {
			return true
		}
	}
	if b, err := os.ReadFile(base + "cgroup"); err == nil && strings.Contains(string(b), h.CgroupParent+"/") {
		return true
	}
	if l, err := os.Readlink(base + "cwd"); err == nil && strings.HasPrefix(l, h.Dir) {
		return true
	}
	fds, _ := os.ReadDir(base + "fd")
	for _, fd := range fds {
		if l, err := os.Readlink(base + "fd/" + fd.Name()); err == nil && strings.HasPrefix(l, h.Dir) {
			return true
		}
	}
	return false
}

// Leaks lists what is in after and not in before, sorted.
func Leaks(before, after Snapshot) []string {
	var out []string
	for kind, items := range after {
		for key, desc := range items {
			if _, ok := before[kind][key]; !ok {
				out = append(out, kind+": "+desc)
			}
		}
	}
	sort.Strings(out)
	return out
}

// CheckLeaks waits up to 10s for the host to be back to before, then fails
// the test naming each leftover.
func (h *Cribd) CheckLeaks(t testing.TB, before Snapshot, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var left []string
	for {
		left = Leaks(before, h.Snapshot())
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, l := range left {
		if h.KnownLeak != nil {
			if why := h.KnownLeak(l); why != "" {
				t.Logf("known leak %s: %s (%s)", when, l, why)
				continue
			}
		}
		t.Errorf("leak %s: %s", when, l)
	}
}

// ForceCleanup removes what a failed test or a buggy cribd left behind, so the
// next test (and the next CI run on this machine) starts clean. It touches
// only what is new since the baseline.
func (h *Cribd) ForceCleanup() {
	now := h.Snapshot()
	for key, desc := range now[KindProcess] {
		if _, ok := h.baseline[KindProcess][key]; ok {
			continue
		}
		pid, _ := strconv.Atoi(strings.SplitN(key, "/", 2)[0])
		if start, _ := ProcStat(pid); start != "" && fmt.Sprintf("%d/%s", pid, start) == key {
			h.t.Logf("cleanup: killing %s", desc)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var mounts []string
	for key := range now[KindMount] {
		if _, ok := h.baseline[KindMount][key]; !ok {
			mounts = append(mounts, strings.Fields(key)[0])
		}
	}
	// Deepest first.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		_ = exec.Command("umount", "-l", m).Run()
	}
	for name := range now[KindNetNS] {
		if _, ok := h.baseline[KindNetNS][name]; !ok {
			_ = exec.Command("ip", "netns", "delete", name).Run()
			_ = os.Remove(filepath.Join(h.NetNSDir, name))
		}
	}
	for name := range now[KindVeth] {
		if _, ok := h.baseline[KindVeth][name]; !ok {
			_ = exec.Command("ip", "link", "del", name).Run()
		}
	}
	// Cgroups: children before parents, then the parent itself.
	RemoveCgroupTree(h.CgroupParent)
}

// RemoveCgroupTree removes the cgroup parent (a path below each hierarchy's
// root) and everything under it, in every hierarchy, children first. It
// returns the cgroups it found below parent. A cgroup whose last tasks are
// still exiting is retried for up to a second.
func RemoveCgroupTree(parent string) (below []string) {
	roots, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(parent, "/")))
	// On the unified hierarchy (cgroup v2) the parent is right below the
	// root, not below one per controller.
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		roots = []string{filepath.Join("/sys/fs/cgroup", parent)}
	}
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- { // WalkDir lists parents first
			if dirs[i] != root {
				below = append(below, dirs[i])
			}
			for try := 0; try < 50; try++ {
				if err := syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, fs.ErrNotExist) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return below
}

// PodIDs are the pods this harness's cribd has logged (every CRI call and
// every pod event names its pod), so leak checks and cleanup leave other
// suites' pods on the machine alone.
func (h *Cribd) PodIDs() map[string]bool {
	ids := map[string]bool{}
	for _, m := range podIDPattern.FindAllStringSubmatch(h.Log(), -1) {
		ids[m[1]] = true
	}
	if ents, err := os.ReadDir(filepath.Join(h.RootDir, "pods")); err == nil {
		for _, e := range ents {
			ids[e.Name()] = true
		}
	}
	return ids
}

var podIDPattern = regexp.MustCompile(`pod=([0-9a-f]{64})`)

// MentionsPod reports whether a mountinfo line names one of ids' netns pins.
func MentionsPod(line string, ids map[string]bool) bool {
	for _, m := range netnsPinPattern.FindAllStringSubmatch(line, -1) {
		if ids[m[1]] {
			return true
		}
	}
	return false
}

var netnsPinPattern = regexp.MustCompile(`crib-([0-9a-f]{64})`)
