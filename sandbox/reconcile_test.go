package sandbox

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
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
