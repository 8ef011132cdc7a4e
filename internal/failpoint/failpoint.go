// Package failpoint names the steps of crib's state-changing calls at which
// a test build of cribd can be made to die, so that tests can prove that a
// kill -9 between any two steps leaves something the next call, or the next
// start, finishes.
//
// A call site is one line, after the step it names is done:
//
//	failpoint.Inject("sandbox.run.after-record")
//
// In the ordinary build (no build tag) Inject does nothing and the
// compiler removes the call. Built with the tag `failpoints` (make
// build-test: bin/cribd-failpoints), cribd reads CRIB_FAILPOINT once at
// start; the step it names kills cribd with SIGKILL when reached, so no
// deferred undo, no cleanup and no shutdown runs, as in a real crash.
package failpoint

// EnvVar names the one failpoint a test build of cribd arms. Builds
// without the failpoints tag never read it.
const EnvVar = "CRIB_FAILPOINT"

// Names is the registry of failpoints, in the order a pod's lifecycle
// reaches them (pull, run, create, start, stop, remove, stop pod, remove
// pod). A unit test checks that every Inject call names one of these and
// that each is injected exactly once.
var Names = []string{
	// PullImage (image/).
	"image.pull.during-layer", // a layer blob is being read: the copy is half done
	"image.pull.after-copy",   // the image is committed in the store

	// RunPodSandbox (sandbox/pod/run.go).
	"sandbox.run.after-pod-dir",       // <root_dir>/pods/<id> made, no record yet
	"sandbox.run.after-record",        // record written in phase creating
	"sandbox.run.after-run-dir",       // <run_dir>/pods/<id> made
	"sandbox.run.after-cgroup-parent", // the pod's cgroup parent made
	"sandbox.run.after-files",         // hostname, resolv.conf, hosts written
	"sandbox.run.after-shm",           // /dev/shm mounted
	"sandbox.run.after-netns",         // namespaces pinned
	"sandbox.run.after-network",       // CNI ADD done (pause may be starting)
	"sandbox.run.after-pause",         // pause container running (CNI may be in flight)
	"sandbox.run.after-ready",         // record written in phase ready

	// CreateContainer (sandbox/container/container.go).
	"container.create.after-record",      // record written, marked creating
	"container.create.after-rootfs",      // writable layer made and mounted
	"container.create.after-shim-create", // the shim created the container
	"container.create.after-pid-record",  // record written with the init PID

	// StartContainer (sandbox/container/lifecycle.go).
	"container.start.after-shim-start", // the shim started the container

	// StopContainer.
	"container.stop.after-signal", // the stop signal sent, grace period running
	"container.stop.after-kill",   // SIGKILL sent

	// RemoveContainer.
	"container.remove.after-removing-record", // record marked removing
	"container.remove.after-shim-delete",     // the shim deleted the container
	"container.remove.after-rootfs",          // writable layer removed
	"container.remove.after-record",          // record removed

	// StopPodSandbox (sandbox/pod/stop.go).
	"sandbox.stop.after-containers",    // app containers stopped and their states saved
	"sandbox.stop.after-pause-delete",  // the shim deleted the pause container
	"sandbox.stop.after-pause",         // pause and shim gone
	"sandbox.stop.after-network",       // CNI DEL done and recorded
	"sandbox.stop.after-namespaces",    // pins and /dev/shm released
	"sandbox.stop.after-cgroup-parent", // the pod's cgroup parent released
	"sandbox.stop.after-record",        // record written in phase stopped

	// RemovePodSandbox.
	"sandbox.remove.after-containers", // the pod's containers removed
	"sandbox.remove.after-run-dir",    // <run_dir>/pods/<id> removed
	"sandbox.remove.after-files",      // the pod's files but its record removed
	"sandbox.remove.after-record",     // the record removed, its dir not yet
}

// Known reports whether name is in Names.
func Known(name string) bool {
	for _, n := range Names {
		if n == name {
			return true
		}
	}
	return false
}
