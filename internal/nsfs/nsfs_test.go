package nsfs

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

const netnsDir = "/var/run/netns"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func randName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "crib-test-" + hex.EncodeToString(b)
}

// mountsUnder returns the mount points in the mountinfo of pid ("self" or a
// number) that are dir or lie under it, with their file system types.
func mountsUnder(t *testing.T, pid, dir string) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir = resolve(t, dir)
	found := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		mp := strings.ReplaceAll(fields[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			found[mp] = fields[sep+1]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return found
}

// resolve follows symlinks in p's existing prefix (/var/run is /run).
func resolve(t *testing.T, p string) string {
	t.Helper()
	dir, base := filepath.Split(filepath.Clean(p))
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(r, base)
	}
	return p
}

func nsfsUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for mp, fstype := range mountsUnder(t, "self", dir) {
		if fstype == "nsfs" {
			out = append(out, mp)
		}
	}
	return out
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// sharedTempDir returns a temp dir whose mounts (the pins a test leaks on
// failure, the shared bind mount Pin makes of a directory holding a Net pin)
// are undone at cleanup, before the dir is removed.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		for range 8 {
			mps := mountsUnder(t, "self", dir)
			if len(mps) == 0 {
				return
			}
			for mp := range mps {
				_ = unix.Unmount(mp, unix.MNT_DETACH)
			}
		}
	})
	return dir
}

func TestPinAllTypesInTempDir(t *testing.T) {
	requireRoot(t)
	dir := sharedTempDir(t)
	paths := map[Type]string{
		Net: filepath.Join(dir, "pod", "net"),
		IPC: filepath.Join(dir, "pod", "ipc"),
		UTS: filepath.Join(dir, "pod", "uts"),
	}
	host := map[Type]uint64{}
	for typ := range paths {
		host[typ] = inode(t, "/proc/self/ns/"+string(typ))
	}
	if err := Pin(paths); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			_ = Unpin(p)
		}
	})

	for typ, p := range paths {
		if !IsPinned(p) {
			t.Errorf("%s: IsPinned(%s) = false", typ, p)
		}
		if got := inode(t, p); got == host[typ] {
			t.Errorf("%s: pin inode %d is the host's namespace", typ, got)
		}
		// /proc/self/ns is the main thread's: Pin never runs there.
		if got := inode(t, "/proc/self/ns/"+string(typ)); got != host[typ] {
			t.Errorf("%s: the main thread moved to namespace %d", typ, got)
		}
	}
	if got := len(nsfsUnder(t, dir)); got != 3 {
		t.Errorf("nsfs mounts under %s: got %d, want 3", dir, got)
	}

	for range 2 {
		for typ, p := range paths {
			if err := Unpin(p); err != nil {
				t.Errorf("Unpin %s: %v", typ, err)
			}
		}
	}
	for typ, p := range paths {
		if IsPinned(p) {
			t.Errorf("%s still pinned after Unpin", typ)
		}
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: file %s still there: %v", typ, p, err)
		}
	}
	if left := nsfsUnder(t, dir); len(left) != 0 {
		t.Errorf("nsfs mounts left in mountinfo: %v", left)
	}
}

// TestPinKeepsMainThread pins repeatedly, so that the pinning goroutine often
// starts on the main thread, and checks the main thread never moves.
func TestPinKeepsMainThread(t *testing.T) {
	requireRoot(t)
	dir := sharedTempDir(t)
	host := inode(t, "/proc/self/ns/uts")
	for i := range 20 {
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := Pin(map[Type]string{UTS: p}); err != nil {
			t.Fatalf("Pin: %v", err)
		}
		if got := inode(t, "/proc/self/ns/uts"); got != host {
			t.Fatalf("pin %d: main thread moved to UTS namespace %d", i, got)
		}
		if err := Unpin(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPinNetNSVisibleToIP(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip not installed")
	}
	restoreNetNSDir(t)
	name := randName(t)
	path := filepath.Join(netnsDir, name)
	if err := Pin(map[Type]string{Net: path}); err != nil {
		t.Fatalf("Pin: %v", err)
	}
	t.Cleanup(func() { _ = Unpin(path) })

	if inode(t, path) == inode(t, "/proc/self/ns/net") {
		t.Fatalf("pin is the host network namespace")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), name) {
		t.Errorf("ip netns list: %v\n%s", err, out)
	}
	// A fresh namespace has only lo.
	out, err = exec.Command("ip", "netns", "exec", name, "ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec: %v\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], " lo:") {
		t.Errorf("ip netns exec ip link: want only lo, got\n%s", out)
	}
	// ... and it is up, so localhost works in the pod.
	if !strings.Contains(string(out), "UP") {
		t.Errorf("lo is not up in the pinned netns:\n%s", out)
	}
	// The netns dir is a shared mount, like ip netns add leaves it.
	if !isSharedMount(t, filepath.Dir(path)) {
		t.Errorf("%s is not a shared mount point", netnsDir)
	}

	// Propagation: a mount namespace made now holds a copy of the pin, and
	// Unpin here removes that copy too.
	child := exec.Command("unshare", "--mount", "--propagation", "slave", "sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	pid := strconv.Itoa(child.Process.Pid)
	waitFor(t, "child to enter its mount namespace", func() bool {
		cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		return strings.HasPrefix(string(cmd), "sleep\x00")
	})
	if _, ok := mountsUnder(t, pid, path)[resolve(t, path)]; !ok {
		t.Fatalf("child mount namespace has no copy of the pin")
	}

	for range 2 {
		if err := Unpin(path); err != nil {
			t.Errorf("Unpin: %v", err)
		}
	}
	if left := mountsUnder(t, pid, path); len(left) != 0 {
		t.Errorf("pin still mounted in the child mount namespace: %v", left)
	}
	if left := nsfsUnder(t, path); len(left) != 0 {
		t.Errorf("pin still in mountinfo: %v", left)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin file still there: %v", err)
	}
	out, _ = exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(out), name) {
		t.Errorf("ip netns list still shows %s", name)
	}
}

// restoreNetNSDir puts /var/run/netns back as the test found it: if Pin made
// it (or made it a mount point), that is undone at cleanup unless someone
// else's pins are in it by then (plain unmount fails with EBUSY, rmdir with
// ENOTEMPTY).
func restoreNetNSDir(t *testing.T) {
	t.Helper()
	_, statErr := os.Stat(netnsDir)
	existed := statErr == nil
	_, mounted := mountsUnder(t, "self", netnsDir)[resolve(t, netnsDir)]
	t.Cleanup(func() {
		if !mounted {
			_ = unix.Unmount(netnsDir, 0)
		}
		if !existed {
			_ = os.Remove(netnsDir)
		}
	})
}

func isSharedMount(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	dir = resolve(t, dir)
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 6 && fields[4] == dir {
			for _, f := range fields[6:] {
				if f == "-" {
					break
				}
				if strings.HasPrefix(f, "shared:") {
					return true
				}
			}
		}
	}
	return false
}

func TestPinFailureLeavesNothing(t *testing.T) {
	requireRoot(t)
	dir := sharedTempDir(t)
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", ro, "tmpfs", unix.MS_RDONLY, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(ro, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		paths map[Type]string
		bad   string
	}{
		{"all unwritable", map[Type]string{Net: filepath.Join(ro, "net")}, filepath.Join(ro, "net")},
		// Net is pinned first, then IPC fails: the Net pin must be undone.
		{"last unwritable", map[Type]string{
			Net: filepath.Join(dir, "ok", "net"),
			UTS: filepath.Join(dir, "ok", "uts"),
			IPC: filepath.Join(ro, "ipc"),
		}, filepath.Join(ro, "ipc")},
		{"parent is a file", map[Type]string{
			Net: filepath.Join(dir, "ok2", "net"),
			IPC: filepath.Join(dir, "file", "ipc"),
		}, filepath.Join(dir, "file", "ipc")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Pin(tc.paths)
			if err == nil {
				t.Fatalf("Pin succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("error %q does not name %s", err, tc.bad)
			}
			t.Logf("error: %v", err)
			for _, p := range tc.paths {
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
					t.Errorf("%s left behind (%v)", p, err)
				}
			}
			if left := nsfsUnder(t, dir); len(left) != 0 {
				t.Errorf("nsfs mounts left: %v", left)
			}
		})
	}
}

func TestPinRejectsBadRequests(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		paths map[Type]string
		kind  error
	}{
		{"empty", nil, errdefs.ErrInvalidArgument},
		{"unknown type", map[Type]string{"pid": filepath.Join(dir, "pid")}, errdefs.ErrInvalidArgument},
		{"relative", map[Type]string{IPC: "ipc"}, errdefs.ErrInvalidArgument},
		{"duplicate", map[Type]string{IPC: filepath.Join(dir, "x"), UTS: filepath.Join(dir, "x")}, errdefs.ErrInvalidArgument},
		{"exists", map[Type]string{IPC: existing}, errdefs.ErrAlreadyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Pin(tc.paths)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Pin: got %v, want %v", err, tc.kind)
			}
		})
	}
	if data, err := os.ReadFile(existing); err != nil || string(data) != "keep" {
		t.Errorf("existing file changed: %q, %v", data, err)
	}
	if left := nsfsUnder(t, dir); len(left) != 0 {
		t.Errorf("nsfs mounts left: %v", left)
	}
}

func TestUnpinMissing(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "nothing"), plain} {
		if err := Unpin(p); err != nil {
			t.Errorf("Unpin(%s): %v", p, err)
		}
	}
	if IsPinned(plain) || IsPinned(filepath.Join(dir, "nothing")) {
		t.Errorf("IsPinned true for a plain path")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPinInUserNS(t *testing.T) {
	requireRoot(t)
	dir := sharedTempDir(t)
	paths := map[Type]string{
		Net: filepath.Join(dir, "pod", "net"),
		IPC: filepath.Join(dir, "pod", "ipc"),
		UTS: filepath.Join(dir, "pod", "uts"),
	}
	user := UserNS{
		Path:        filepath.Join(dir, "pod", "user"),
		UIDMappings: []state.IDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
		GIDMappings: []state.IDMapping{{ContainerID: 0, HostID: 300000, Size: 1000}},
		Holder:      []string{"sleep", "infinity"},
	}
	holder, err := PinInUserNS(paths, user)
	if err != nil {
		t.Fatalf("PinInUserNS: %v", err)
	}
	// The holder is still in the namespaces, until stopped.
	if got, want := inode(t, holder.NSPath(User)), inode(t, user.Path); got != want {
		t.Errorf("holder is in user namespace %d, want the pin's %d", got, want)
	}
	holder.Stop()
	all := []string{user.Path, paths[Net], paths[IPC], paths[UTS]}
	t.Cleanup(func() {
		for _, p := range all {
			_ = Unpin(p)
		}
	})
	for _, p := range all {
		if !IsPinned(p) {
			t.Errorf("IsPinned(%s) = false", p)
		}
	}
	if got, want := inode(t, user.Path), inode(t, "/proc/self/ns/user"); got == want {
		t.Fatalf("user namespace pin is the host's (inode %d)", got)
	}
	// Every other namespace is owned by the new user namespace.
	for typ, p := range paths {
		if got, want := ownerInode(t, p), inode(t, user.Path); got != want {
			t.Errorf("%s namespace is owned by user namespace %d, want the pod's %d", typ, got, want)
		}
	}
	// The mappings as a process joining the namespace sees them.
	out, err := exec.Command("nsenter", "--user="+user.Path, "cat", "/proc/self/uid_map", "/proc/self/gid_map", "/proc/self/setgroups").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	if got, want := strings.Fields(string(out)), []string{"0", "200000", "65536", "0", "300000", "1000", "allow"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("uid_map, gid_map, setgroups: got %v, want %v", got, want)
	}
	out, err = exec.Command("nsenter", "--net="+paths[Net], "ip", "-o", "link", "show", "lo").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "state UNKNOWN") && !strings.Contains(string(out), ",UP") {
		t.Errorf("lo is not up in the pinned network namespace: %s", out)
	}
	for _, p := range all {
		if err := Unpin(p); err != nil {
			t.Errorf("Unpin %s: %v", p, err)
		}
	}
	if left := nsfsUnder(t, dir); len(left) != 0 {
		t.Errorf("nsfs mounts left in mountinfo: %v", left)
	}
}

func TestPinInUserNSFailureLeavesNothing(t *testing.T) {
	requireRoot(t)
	dir := sharedTempDir(t)
	paths := map[Type]string{
		Net: filepath.Join(dir, "net"),
		UTS: filepath.Join(dir, "uts"),
	}
	if err := os.WriteFile(paths[UTS], nil, 0o600); err != nil { // already there: the UTS pin fails
		t.Fatal(err)
	}
	user := UserNS{
		Path:        filepath.Join(dir, "user"),
		UIDMappings: []state.IDMapping{{HostID: 200000, Size: 65536}},
		GIDMappings: []state.IDMapping{{HostID: 200000, Size: 65536}},
		Holder:      []string{"sleep", "infinity"},
	}
	_, err := PinInUserNS(paths, user)
	if !errors.Is(err, errdefs.ErrAlreadyExists) || !strings.Contains(err.Error(), paths[UTS]) {
		t.Fatalf("PinInUserNS over an existing file: got %v, want AlreadyExists naming %s", err, paths[UTS])
	}
	if left := nsfsUnder(t, dir); len(left) != 0 {
		t.Errorf("nsfs mounts left: %v", left)
	}
	for _, p := range []string{user.Path, paths[Net]} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}

	for name, bad := range map[string]UserNS{
		"relative path": {Path: "user", UIDMappings: user.UIDMappings, GIDMappings: user.GIDMappings, Holder: user.Holder},
		"no mappings":   {Path: user.Path, Holder: user.Holder},
		"no holder":     {Path: user.Path, UIDMappings: user.UIDMappings, GIDMappings: user.GIDMappings},
	} {
		if _, err := PinInUserNS(map[Type]string{Net: filepath.Join(dir, "net2")}, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
}

// ownerInode is the inode of the user namespace that owns the namespace
// pinned at p (ioctl NS_GET_USERNS).
func ownerInode(t *testing.T, p string) uint64 {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
	if err != nil {
		t.Fatalf("NS_GET_USERNS %s: %v", p, err)
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestHolderEndsWithItsStarter: a holder's stdin is a pipe only its starter
// writes to, so a holder that waits for end of file (crib-pause -hold; cat
// here) ends when the starter goes away, without being killed.
func TestHolderEndsWithItsStarter(t *testing.T) {
	requireRoot(t)
	ids := []state.IDMapping{{HostID: 200000, Size: 65536}}
	h, err := StartInUserNS([]string{"cat"}, ids, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("holder exited before its stdin closed: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	h.stdin.Close() // what the kernel does when the starter dies
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("holder exit: %v, want 0 (end of file)", err)
		}
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		t.Fatal("holder still running 10 s after its stdin closed")
	}
}
