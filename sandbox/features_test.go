package sandbox

import "testing"

// This project's machines run kernel 6.x, which has mount_setattr.
func TestRecursiveReadOnlySupported(t *testing.T) {
	if !RecursiveReadOnlySupported() {
		t.Error("mount_setattr reported missing on this kernel")
	}
}
