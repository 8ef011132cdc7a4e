package pod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// This project's machines run kernel 6.x, which has mount_setattr.
func TestRecursiveReadOnlySupported(t *testing.T) {
	if !RecursiveReadOnlySupported() {
		t.Error("mount_setattr reported missing on this kernel")
	}
}

// The project's machines keep /var/lib on ext4 under kernel 6.x, which
// allows idmapped mounts; /proc does not.
func TestIDMappedMountsSupported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	holder := []string{"sleep", "infinity"}
	if err := IDMappedMountsSupported("/var/lib", holder); err != nil {
		t.Errorf("/var/lib: %v", err)
	}
	if err := IDMappedMountsSupported("/proc", holder); err == nil {
		t.Error("/proc: idmapped mount reported supported")
	}
}

func TestUserNamespacesSupported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	holder := []string{"sleep", "infinity"}
	top, err := os.MkdirTemp("", "userns-") // 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	root := filepath.Join(top, "root")
	if err := os.MkdirAll(root, 0o711); err != nil {
		t.Fatal(err)
	}
	err = UserNamespacesSupported(root, root, holder)
	if err == nil || !strings.Contains(err.Error(), top+" is mode 0700") {
		t.Errorf("below a 0700 directory: got %v, want an error naming %s", err, top)
	}
	if err := os.Chmod(top, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := UserNamespacesSupported(root, root, holder); err != nil {
		t.Errorf("below 0711 directories: %v", err)
	}
}
