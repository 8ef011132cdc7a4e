//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"syscall"
)

// Enabled tells whether this binary was built with failpoints.
const Enabled = true

// armed is the failpoint CRIB_FAILPOINT names, read once at start; a
// registry of one, never changed after init.
var armed = os.Getenv(EnvVar)

func init() {
	if armed != "" && !Known(armed) {
		// A typo in a test must not pass as a failpoint never reached.
		fmt.Fprintf(os.Stderr, "%s=%q names no failpoint (see internal/failpoint.Names)\n", EnvVar, armed)
		os.Exit(2)
	}
}

// Inject kills the process with SIGKILL when name is the armed failpoint:
// no deferred function, undo or shutdown runs, as in a crash. The line it
// prints first lets a test tell this death from any other.
func Inject(name string) {
	if armed == "" || name != armed {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s reached: killing pid %d\n", name, os.Getpid())
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; never go on past the step
}
