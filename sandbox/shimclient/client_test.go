package shimclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/procfs"
)

func TestRemoteError(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		kind error // nil: none
	}{
		{"container abc: not found", errdefs.ErrNotFound},
		{"container abc: already exists", errdefs.ErrAlreadyExists},
		{"start container abc: container is running, not created: failed precondition", errdefs.ErrFailedPrecondition},
		{"create container abc: bad container ID \"\": invalid argument", errdefs.ErrInvalidArgument},
		{"create container abc: terminal: not implemented", errdefs.ErrUnimplemented},
		{"create container abc: invalid rootfs: stat /x: no such file or directory", nil},
		{"not found", nil}, // only a ": <sentinel>" suffix counts
		{shimapi.UnknownMethodPrefix + "Shim.Attach", errdefs.ErrFailedPrecondition},
	} {
		err := remoteError(tc.msg)
		if strings.HasPrefix(tc.msg, shimapi.UnknownMethodPrefix) {
			if want := "this pod's shim predates Shim.Attach (it was started by an older crib); recreate the pod to use it"; err.Error() != want {
				t.Errorf("%q: message %q, want %q", tc.msg, err, want)
			}
		} else if err.Error() != tc.msg {
			t.Errorf("%q: message changed to %q", tc.msg, err)
		}
		for _, k := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrFailedPrecondition, errdefs.ErrInvalidArgument, errdefs.ErrUnimplemented} {
			if got := errors.Is(err, k); got != (k == tc.kind) {
				t.Errorf("%q: errors.Is(%v) = %v", tc.msg, k, got)
			}
		}
	}
}

// Launch reports a shim that dies before ready, and gives up (killing it)
// on a shim that never reports.
func TestLaunchFailures(t *testing.T) {
	bin := t.TempDir()
	write := func(name, script string) string {
		p := filepath.Join(bin, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir := t.TempDir()

	_, err := Launch(context.Background(), LaunchOptions{Binary: write("dies", "exit 3"), Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "exited before ready") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("dying shim: %v", err)
	}

	_, err = Launch(context.Background(), LaunchOptions{Binary: write("fails", `echo "cannot frobnicate" >&3; exit 1`), Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "cannot frobnicate") {
		t.Errorf("failing shim: %v", err)
	}

	pidFile := filepath.Join(dir, "hang.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Launch(ctx, LaunchOptions{Binary: write("hangs", "echo $$ > "+pidFile+"; exec sleep 30"), Dir: dir})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging shim: %v, want DeadlineExceeded", err)
	}
	data, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	var pid int
	for _, c := range strings.TrimSpace(string(data)) {
		pid = pid*10 + int(c-'0')
	}
	if _, err := procfs.StartTime(pid); err == nil {
		t.Errorf("hanging shim %d still runs after Launch gave up", pid)
	}

	if _, err := Connect(dir); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("Connect without a shim: %v, want Unavailable", err)
	}
}
