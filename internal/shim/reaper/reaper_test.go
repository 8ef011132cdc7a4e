package reaper

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/internal/procfs"
)

// TestReaperReapsOnlyOrphans makes the test process a subreaper, creates an
// orphan (a shell's background child) and a tracked child, and checks that
// reapOrphans reaps the first and leaves the second's status to its waiter.
func TestReaperReapsOnlyOrphans(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	r := New()

	// The shell prints its background child's PID and exits; the child,
	// orphaned, is reparented to us and exits a moment later.
	out, err := exec.Command("sh", "-c", "sleep 0.1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}

	tracked := exec.Command("sh", "-c", "exit 7")
	if err := tracked.Start(); err != nil {
		t.Fatal(err)
	}
	r.Track(tracked.Process.Pid)

	waitZombie(t, orphan)
	waitZombie(t, tracked.Process.Pid)
	r.reapOrphans()

	if _, err := procfs.ReadStat(orphan); err == nil {
		t.Errorf("orphan %d not reaped", orphan)
	}
	err = tracked.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("tracked child's status was stolen: Wait = %v", err)
	}
}

func waitZombie(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st, err := procfs.ReadStat(pid); err == nil && st.State == 'Z' {
			return
		}
	}
	t.Fatalf("pid %d did not become a zombie", pid)
}
