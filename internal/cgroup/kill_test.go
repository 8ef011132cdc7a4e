package cgroup

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestProcs(t *testing.T) {
	v1a, v1b, v2 := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(h, content string) {
		if err := os.MkdirAll(filepath.Join(h, "crib/pod"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(h, "crib/pod/cgroup.procs"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(v1a, "10\n11\n")
	write(v1b, "11\n12\n")
	write(v2, "")
	tests := []struct {
		name        string
		hierarchies []string
		want        []int
	}{
		{"each pid once across hierarchies", []string{v1a, v1b, v2}, []int{10, 11, 12}},
		{"empty", []string{v2}, nil},
		{"missing in a hierarchy", []string{t.TempDir(), v1a}, []int{10, 11}},
		{"no hierarchies", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Procs(tc.hierarchies, "crib/pod")
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
