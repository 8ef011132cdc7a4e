//go:build integration

package integration

// Crash safety (issue 13): each test kills cribd, makes the state that a
// kill between two steps of an RPC leaves (the test is the seam: the state
// is made exactly, not raced for), restarts cribd and checks that start-up
// or the next call finishes it. The image store is reached through crib's
// own image package while cribd is down, as cribd itself would have.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/image"
)

// openStore opens the killed cribd's image store in the test process.
// It is never closed: closing would unmount every layer, which a crash
// does not. cribd must not run meanwhile.
func (h *Harness) openStore() *image.Service {
	h.t.Helper()
	if h.Running() {
		h.t.Fatal("openStore: cribd is running")
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	svc, err := image.New(image.Options{
		GraphRoot: filepath.Join(h.RootDir, "storage"),
		RunRoot:   filepath.Join(h.RunDir, "storage"),
		Log:       log,
	})
	if err != nil {
		h.t.Fatalf("open cribd's image store: %v", err)
	}
	return svc
}

// storeContainers reads the IDs of the store's containers from its index
// (the library's containers.json), as a crib of any version leaves it.
func (h *Harness) storeContainers() map[string]bool {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.RootDir, "storage", "overlay-containers", "containers.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		h.t.Fatalf("containers.json: %v", err)
	}
	out := map[string]bool{}
	for _, c := range list {
		out[c.ID] = true
	}
	return out
}

// mounted reports whether path is a mount point in cribd's (the host's)
// mount namespace.
func mounted(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// busyboxID is the store ID of the busybox image containerPod pulled.
func (h *Harness) busyboxID() image.ID {
	h.t.Helper()
	img := findImage(h.Images(), "docker.io/library/busybox:latest")
	if img == nil {
		h.t.Fatal("busybox is not in the store")
	}
	id, err := image.ParseID(img.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// editRecord rewrites a JSON record on disk through edit.
func editRecord(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := map[string]any{}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	edit(rec)
	if data, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCrashRemoveContainerAfterRootfs (defect 1): cribd killed in
// RemoveContainer after the writable layer went and before the record did.
// Before, every later rm and rmp failed, across restarts, with the store's
// "identifier is not a container"; now start-up finishes the removal and a
// repeated rm succeeds.
func TestCrashRemoveContainerAfterRootfs(t *testing.T) {
	h, podID, pod := containerPod(t)
	ctr := h.CreateContainer(podID, shellContainer("doomed", "sleep 600"), pod)
	h.Crictl("start", ctr)
	h.Crictl("stop", "-t", "0", ctr)
	record := filepath.Join(h.RootDir, "pods", podID, "containers", ctr+".json")

	h.Kill()
	// What RemoveContainer had done when it was killed: the record is
	// marked removing and the writable layer is gone.
	editRecord(t, record, func(rec map[string]any) { rec["removing"] = true })
	if err := h.openStore().RemoveRootfs(ctr); err != nil {
		t.Fatalf("seam: remove the writable layer: %v", err)
	}
	h.Start()

	// As kubelet does (crictl rm would first ask for the status of a
	// container that start-up has already removed).
	if _, err := h.client().RemoveContainer(ctx30(t), &runtimeapi.RemoveContainerRequest{ContainerId: ctr}); err != nil {
		t.Fatalf("RemoveContainer after the crash: %v", err)
	}
	if out := h.Crictl("ps", "-a", "-q"); strings.Contains(out, ctr) {
		t.Errorf("crictl ps -a still lists container %s", ctr)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Errorf("container record %s: %v, want it gone", record, err)
	}
	if _, e, err := h.CrictlRaw("rmp", "-f", podID); err != nil {
		t.Fatalf("crictl rmp after the crash: %v: %s", err, crictlError(e))
	}
}

// TestCrashCreateContainerLeavesNoLayer (defect 2): cribd killed in
// CreateContainer after the writable layer was made (and mounted). Two
// cases: by a crib that made the layer before any record (no record at
// all), and by this one (a record marked creating). Before, the layer
// stayed in the store, mounted, for good; now start-up removes both, and
// the name of the one cut short is free again.
func TestCrashCreateContainerLeavesNoLayer(t *testing.T) {
	h, podID, pod := containerPod(t)
	imgID := h.busyboxID()
	h.Kill()

	svc := h.openStore()
	orphan, creating := randomHex(32), randomHex(32)
	orphanMnt, err := svc.CreateRootfs(orphan, imgID, "app_"+podID+"_0", image.IDMappings{})
	if err != nil {
		t.Fatalf("seam: make a writable layer: %v", err)
	}
	creatingMnt, err := svc.CreateRootfs(creating, imgID, "second_"+podID+"_0", image.IDMappings{})
	if err != nil {
		t.Fatalf("seam: make a writable layer: %v", err)
	}
	rec, _ := json.Marshal(map[string]any{
		"version": 1, "id": creating, "podId": podID, "name": "second", "attempt": 0,
		"image": "busybox", "creating": true,
	})
	ctrDir := filepath.Join(h.RootDir, "pods", podID, "containers")
	if err := os.MkdirAll(ctrDir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctrDir, creating+".json"), rec, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mnt := range []string{orphanMnt, creatingMnt} {
		if !mounted(t, mnt) {
			t.Fatalf("seam: %s is not mounted", mnt)
		}
	}
	h.Start()

	store := h.storeContainers()
	for _, id := range []string{orphan, creating} {
		if store[id] {
			t.Errorf("after restart the store still has writable layer %s", id)
		}
	}
	for _, mnt := range []string{orphanMnt, creatingMnt} {
		if mounted(t, mnt) {
			t.Errorf("after restart %s is still mounted", mnt)
		}
	}
	if out := h.Crictl("ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("crictl ps -a lists %q, want no container", out)
	}
	// kubelet retries the create under the same name and attempt.
	second := h.CreateContainer(podID, shellContainer("second", "sleep 600"), pod)
	h.Crictl("rm", second)
	h.Crictl("rmp", "-f", podID)
	if store := h.storeContainers(); len(store) != 0 {
		t.Errorf("after rmp the store has writable layers %v", store)
	}
}

// TestCrashLeftoversRemovedAtStart (defect 6): what kills between a file's
// creation and its use leave: a pod run dir no record names (empty, or
// with a tmpfs mounted in it), the store's and the records' temporary
// files, a killed pull's staged blobs. Start-up removes them and leaves
// the live pod alone.
func TestCrashLeftoversRemovedAtStart(t *testing.T) {
	h := start(t, Options{})
	pod := h.RunPod(podConfig("survivor"))
	pause := h.PausePID(pod)
	h.Kill()

	emptyDir := filepath.Join(h.RunDir, "pods", randomHex(32))
	mountDir := filepath.Join(h.RunDir, "pods", randomHex(32))
	shm := filepath.Join(mountDir, "shm")
	for _, d := range []string{emptyDir, shm} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("shm", shm, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("seam: mount a tmpfs at %s: %v", shm, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(shm, unix.MNT_DETACH) })
	// A pull killed midway leaves the blobs the image library staged.
	staged := filepath.Join(h.RootDir, "storage", "crib-tmp", "container_images_storage123")
	temps := []string{
		filepath.Join(h.RunDir, "storage", "overlay-layers", ".tmp-mountpoints.json123456"),
		filepath.Join(h.RootDir, "storage", "overlay-layers", ".tmp-layers.json654321"),
		filepath.Join(h.RootDir, "pods", pod, ".sandbox.json.tmp-42"),
		filepath.Join(h.RunDir, ".cgroups.json.tmp-7"),
		filepath.Join(staged, "blob"),
	}
	for _, p := range temps {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatalf("seam: %v", err)
		}
	}
	h.Start()

	for _, p := range append([]string{emptyDir, mountDir, staged}, temps...) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("after restart %s: %v, want it gone", p, err)
		}
	}
	if mounted(t, shm) {
		t.Errorf("after restart %s is still mounted", shm)
	}
	if got := h.PausePID(pod); got != pause {
		t.Errorf("pod %s pause pid %d after restart, was %d", pod, got, pause)
	}
	if st := h.Inspect(pod).Status.State; st != "SANDBOX_READY" {
		t.Errorf("pod %s is %s after restart, want SANDBOX_READY", pod, st)
	}
}
