package image

import (
	"reflect"
	"testing"
)

func TestCandidates(t *testing.T) {
	tests := []struct {
		name   string
		search []string
		want   []string
	}{
		{"busybox", nil, []string{"docker.io/library/busybox:latest"}},
		{"busybox:1.36", []string{"quay.io", "docker.io"}, []string{"quay.io/busybox:1.36", "docker.io/library/busybox:1.36"}},
		{"team/app", []string{"registry.example:5000"}, []string{"registry.example:5000/team/app:latest"}},
		{"gcr.io/x/y:1", []string{"quay.io"}, []string{"gcr.io/x/y:1"}},
		{"localhost/app", []string{"quay.io"}, []string{"localhost/app:latest"}},
		{"127.0.0.1:5000/app", []string{"quay.io"}, []string{"127.0.0.1:5000/app:latest"}},
	}
	for _, tc := range tests {
		got, err := candidates(tc.name, tc.search)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var names []string
		for _, n := range got {
			names = append(names, n.String())
		}
		if !reflect.DeepEqual(names, tc.want) {
			t.Errorf("candidates(%q, %v) = %v, want %v", tc.name, tc.search, names, tc.want)
		}
	}
	if _, err := candidates("Bad Name", []string{"quay.io"}); err == nil {
		t.Errorf("a reference that does not parse must be refused")
	}
}
