package libct

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/nsfs"
)

// TestConvertThroughProcess: a spec joining a pinned user namespace is
// converted through the /proc entry of a process given in it (a running
// container), and the config joins through the pin, with the namespace's
// mappings; with no such process there is no quick way.
func TestConvertThroughProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ids := []state.IDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
	inNS, err := nsfs.StartInUserNS([]string{"sleep", "infinity"}, ids, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer inNS.Stop()
	elsewhere, err := nsfs.StartInUserNS([]string{"sleep", "infinity"}, ids, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Stop()
	pin := filepath.Join(t.TempDir(), "user")
	if err := os.WriteFile(pin, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(inNS.NSPath(nsfs.User), pin, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(pin, unix.MNT_DETACH)

	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "/nonexistent-rootfs"},
		Process: &specs.Process{Args: []string{"true"}, Cwd: "/"},
		Mounts:  []specs.Mount{{Destination: "/etc/hosts", Type: "bind", Source: "/etc/hosts", Options: []string{"rbind", "idmap"}}},
		Linux: &specs.Linux{
			CgroupsPath: "/crib-test/c1",
			Namespaces:  []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.UserNamespace, Path: pin}},
		},
	}
	if lc := ConvertThroughProcess("c1", spec, pin, []int{elsewhere.PID()}); lc != nil {
		t.Fatal("converted through a process in another user namespace")
	}
	lc := ConvertThroughProcess("c1", spec, pin, []int{elsewhere.PID(), inNS.PID()})
	if lc == nil {
		t.Fatal("no quick conversion with a running container in the pod's user namespace")
	}
	if got := lc.config.Namespaces.PathOf(configs.NEWUSER); got != pin {
		t.Errorf("config joins the user namespace at %q, want the pin %q", got, pin)
	}
	want := []configs.IDMap{{ContainerID: 0, HostID: 300000, Size: 65536}}
	if !slices.Equal(lc.config.UIDMappings, want) || !slices.Equal(lc.config.GIDMappings, want) {
		t.Errorf("mappings %v %v, want %v", lc.config.UIDMappings, lc.config.GIDMappings, want)
	}
	for _, m := range lc.config.Mounts {
		if m.IDMapping != nil && m.IDMapping.UserNSPath != pin {
			t.Errorf("idmapped mount %s maps through %q, want the pin", m.Destination, m.IDMapping.UserNSPath)
		}
	}
	if spec.Linux.Namespaces[1].Path != pin {
		t.Errorf("the caller's spec was changed: %v", spec.Linux.Namespaces)
	}
}
