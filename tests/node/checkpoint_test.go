//go:build node

package node

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCheckpointContainer: kubelet's checkpoint call, as `crictl
// checkpoint` makes it, on a node with CRIU (the guest has Debian's criu):
// the archive appears at the location given, laid out as CRI-O's and
// containerd's (CRIU's images under checkpoint/, config.dump, spec.dump,
// rootfs-diff.tar holding the file the container wrote), and the container
// runs on, its process the same, answering exec.
func TestCheckpointContainer(t *testing.T) {
	dumpOnFailure(t)
	pod := examplePod(t)
	ctr := crictl(t, "create", pod, shareFile("container.json"), shareFile("pod.json"))
	crictl(t, "start", ctr)
	pid := infoPID(t, "inspect", ctr)
	execIn(t, ctr, "sh", "-c", "echo kept > /checkpointed")

	location := t.TempDir() + "/checkpoint.tar"
	// A dump under software emulation takes seconds: more than crictl's
	// minute would be a hang.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := runtimeClient(t).CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: ctr, Location: location}); err != nil {
		t.Fatalf("CheckpointContainer: %v", err)
	}
	t.Logf("checkpoint in %s", time.Since(start).Round(time.Millisecond))

	entries := strings.Fields(run(t, "tar", "-tf", location))
	for _, want := range []string{"checkpoint/inventory.img", "config.dump", "spec.dump", "rootfs-diff.tar"} {
		if !slices.Contains(entries, want) {
			t.Errorf("archive lacks %s; it holds %v", want, entries)
		}
	}
	if diff := run(t, "sh", "-c", "tar -xOf "+location+" rootfs-diff.tar | tar -t"); !strings.Contains(diff, "checkpointed") {
		t.Errorf("rootfs-diff.tar lacks the file the container wrote:\n%s", diff)
	}
	if config := run(t, "tar", "-xOf", location, "config.dump"); !strings.Contains(config, `"id":"`+ctr+`"`) {
		t.Errorf("config.dump does not name the container: %s", config)
	}

	var st struct {
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	crictlJSON(t, &st, "inspect", "-o", "json", ctr)
	if st.Status.State != "CONTAINER_RUNNING" || infoPID(t, "inspect", ctr) != pid {
		t.Errorf("after the checkpoint: %s, want CONTAINER_RUNNING with pid %d", st.Status.State, pid)
	}
	if got := execIn(t, ctr, "cat", "/checkpointed"); got != "kept" {
		t.Errorf("exec after the checkpoint: %q", got)
	}
	if left := run(t, "sh", "-c", "ls -A /run/crib/checkpoints 2>/dev/null || true"); strings.TrimSpace(left) != "" {
		t.Errorf("checkpoint work directories left: %s", left)
	}
	crictl(t, "stop", "-t", "1", ctr)
	crictl(t, "rm", ctr)
}
