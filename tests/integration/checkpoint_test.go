//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCheckpointContainer: CheckpointContainer's answers on this host.
// Bad input is refused naming the field or object, a container that is not
// running is FailedPrecondition, and on a node without CRIU (this one:
// install-deps.sh does not install it, and Debian 12's CRIU 3.17 fails
// `criu check` on its kernel) a running container's checkpoint is
// FailedPrecondition naming CRIU, with no archive and no work directory
// left. The checkpoint itself is the VM lane's (tests/node,
// TestCheckpointContainer), where the guest has CRIU.
func TestCheckpointContainer(t *testing.T) {
	h, podID, pod := containerPod(t)
	c := h.client()
	ctx := ctx30(t)
	location := filepath.Join(h.Dir, "checkpoint.tar")

	created := h.CreateContainer(podID, shellContainer("created", "exec sleep 600"), pod)
	running := h.CreateContainer(podID, shellContainer("running", "exec sleep 600"), pod)
	h.Crictl("start", running)

	for _, tc := range []struct {
		name      string
		id, where string
		code      codes.Code
		want      string
	}{
		{"no container ID", "", location, codes.InvalidArgument, "container_id"},
		{"relative location", running, "checkpoint.tar", codes.InvalidArgument, "location"},
		{"location in a missing directory", running, filepath.Join(h.Dir, "missing", "c.tar"), codes.InvalidArgument, "location"},
		{"unknown container", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", location, codes.NotFound, "0123456789ab"},
		{"created, not started", created, location, codes.FailedPrecondition, "not running"},
	} {
		_, err := c.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: tc.id, Location: tc.where})
		wantCode(t, tc.name, err, tc.code, tc.want)
	}

	if p, err := exec.LookPath("criu"); err == nil {
		t.Logf("this host has CRIU (%s): the check of its absence is skipped", p)
	} else {
		_, err := c.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: running, Location: location})
		wantCode(t, "checkpoint without CRIU", err, codes.FailedPrecondition, "CRIU")
	}
	if _, err := os.Stat(location); !os.IsNotExist(err) {
		t.Errorf("%s after failed checkpoints: %v, want none", location, err)
	}
	if left, _ := filepath.Glob(filepath.Join(h.RunDir, "checkpoints", "*")); len(left) != 0 {
		t.Errorf("checkpoint work directories left: %v", left)
	}
	// The container runs on.
	if st := h.InspectContainer(running); st.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("container after the failed checkpoints: %s, want CONTAINER_RUNNING", st.Status.State)
	}
}
