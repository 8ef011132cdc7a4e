package sandbox

import (
	"os"
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
