package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
)

// TestCribRootfs: start-up removes only the writable layers crib's naming
// marks as its own.
func TestCribRootfs(t *testing.T) {
	pod := strings.Repeat("ab", 32)
	ctr := strings.Repeat("cd", 32)
	tests := []struct {
		name  string
		id    string
		names []string
		want  bool
	}{
		{"app container", ctr, []string{"app_" + pod + "_0"}, true},
		{"name with underscores", ctr, []string{"my_app_" + pod + "_12"}, true},
		{"pause image", pod, []string{"pause_" + pod}, true},
		{"bind left without a store container", ctr, nil, true},
		{"image volume mount", pod, []string{"imagevol-" + ctr + "-0"}, true},
		{"image volume mount, short container ID", pod, []string{"imagevol-" + ctr[:12] + "-0"}, false},
		{"another tool's container", ctr, []string{"podman-web"}, false},
		{"no attempt", ctr, []string{"app_" + pod}, false},
		{"short pod ID", ctr, []string{"app_" + pod[:12] + "_0"}, false},
		{"ID not crib's", "web", []string{"app_" + pod + "_0"}, false},
		{"no names, ID not crib's", "lost+found", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cribRootfs(tc.id, tc.names); got != tc.want {
				t.Errorf("cribRootfs(%q, %q) = %v, want %v", tc.id, tc.names, got, tc.want)
			}
		})
	}
}

// TestImageMountOwner: an image volume's mount is owned by its
// container's record, named in its store name.
func TestImageMountOwner(t *testing.T) {
	ctr := strings.Repeat("cd", 32)
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{[]string{"imagevol-" + ctr + "-3"}, ctr},
		{[]string{state.ImageMountName(ctr, 12)}, ctr},
		{[]string{"app_" + ctr + "_0"}, ""},
		{[]string{"imagevol-" + ctr}, ""},
		{nil, ""},
	} {
		if got := imageMountOwner(tc.names); got != tc.want {
			t.Errorf("imageMountOwner(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
}

// sweepImages is a store for sweepRootfses: what it lists, and what was
// removed.
type sweepImages struct {
	Images
	list    []image.Rootfs
	removed []string
}

func (f *sweepImages) Rootfses() ([]image.Rootfs, error) { return f.list, nil }
func (f *sweepImages) RemoveRootfs(id string) error {
	f.removed = append(f.removed, id)
	return nil
}

// TestSweepImageMounts: start-up keeps the image mounts of containers
// that have a record and removes the others, as it does writable layers.
func TestSweepImageMounts(t *testing.T) {
	owner, gone := strings.Repeat("c1", 32), strings.Repeat("c2", 32)
	kept, orphan, rootfs := strings.Repeat("e1", 32), strings.Repeat("e2", 32), strings.Repeat("e3", 32)
	f := &sweepImages{list: []image.Rootfs{
		{ID: kept, Names: []string{state.ImageMountName(owner, 0)}},
		{ID: orphan, Names: []string{state.ImageMountName(gone, 1)}},
		{ID: owner, Names: []string{"app_" + strings.Repeat("b", 64) + "_0"}},
		{ID: rootfs, Names: []string{"app_" + strings.Repeat("b", 64) + "_1"}},
	}}
	m := &Manager{opts: Options{Images: f, Log: logrus.New()}}
	m.sweepRootfses(map[string]bool{owner: true})
	if want := []string{orphan, rootfs}; !reflect.DeepEqual(f.removed, want) {
		t.Errorf("removed %v, want %v", f.removed, want)
	}
}

// TestRecordIDs: every record on disk owns its ID, readable or not, and
// the temporary files of writes cut short are deleted.
func TestRecordIDs(t *testing.T) {
	root := t.TempDir()
	pod := strings.Repeat("ab", 32)
	ctr := strings.Repeat("cd", 32)
	files := map[string]string{
		"pods/" + pod + "/sandbox.json":                         "{}",
		"pods/" + pod + "/.sandbox.json.tmp-123":                "{",
		"pods/" + pod + "/containers/" + ctr + ".json":          "torn{",
		"pods/" + pod + "/containers/." + ctr + ".json.tmp-456": "{",
		"pods/" + pod + "/containers/" + ctr + ".spec":          "{}",
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m := &Manager{opts: Options{RootDir: root, Log: logrus.New()}}
	got := m.recordIDs()
	if want := map[string]bool{pod: true, ctr: true}; !reflect.DeepEqual(got, want) {
		t.Errorf("recordIDs = %v, want %v", got, want)
	}
	for name := range files {
		_, err := os.Stat(filepath.Join(root, name))
		if gone := os.IsNotExist(err); gone != strings.Contains(name, ".tmp-") {
			t.Errorf("%s: gone %v after recordIDs", name, gone)
		}
	}
}
