package state

import (
	"strings"
	"testing"
)

func TestParseImageMountName(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		name  string
		id    string
		index int
		ok    bool
	}{
		{ImageMountName(id, 0), id, 0, true},
		{ImageMountName(id, 12), id, 12, true},
		{"imagevol-" + id, "", 0, false},
		{"imagevol--1", "", 0, false},
		{"imagevol-" + id + "-x", "", 0, false},
		{"imagevol-" + id + "-+1", "", 0, false},
		{"app_" + id + "_0", "", 0, false},
	}
	for _, tc := range tests {
		gotID, gotIndex, ok := ParseImageMountName(tc.name)
		if gotID != tc.id || gotIndex != tc.index || ok != tc.ok {
			t.Errorf("ParseImageMountName(%q) = %q, %d, %v; want %q, %d, %v", tc.name, gotID, gotIndex, ok, tc.id, tc.index, tc.ok)
		}
	}
}
