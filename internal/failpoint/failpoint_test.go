package failpoint

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// injectCall matches a call site and captures the failpoint's name.
var injectCall = regexp.MustCompile(`failpoint\.Inject\("([^"]*)"\)`)

// TestRegistryMatchesCallSites: every name in Names is injected exactly
// once in the repository's non-test Go files, and every call site names a
// registered failpoint, so the failpoint walk covers each of them. (This
// package is skipped: its doc comment shows a call.)
func TestRegistryMatchesCallSites(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	sites := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tests" || d.Name() == ".git" || d.Name() == "bin" || path == filepath.Join(root, "internal", "failpoint")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range injectCall.FindAllStringSubmatch(string(b), -1) {
			rel, _ := filepath.Rel(root, path)
			sites[m[1]] = append(sites[m[1]], rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Names {
		switch n := len(sites[name]); {
		case n == 0:
			t.Errorf("failpoint %q is registered but injected nowhere", name)
		case n > 1:
			t.Errorf("failpoint %q is injected %d times (%v); each step needs its own name", name, n, sites[name])
		}
	}
	for name, files := range sites {
		if !Known(name) {
			t.Errorf("%v injects %q, which is not in Names", files, name)
		}
	}
}

func TestKnown(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{Names[0], true},
		{Names[len(Names)-1], true},
		{"", false},
		{"sandbox.run.nowhere", false},
	} {
		if got := Known(tc.name); got != tc.want {
			t.Errorf("Known(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
