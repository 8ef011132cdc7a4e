package store

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestIndexGet(t *testing.T) {
	ids := []string{"abc123", "abd456", "ff00", "ff0011"}
	tests := []struct {
		name    string
		id      string
		want    string // the ID found
		wantErr error
		wantMsg string
	}{
		{"full ID", "abc123", "abc123", nil, ""},
		{"unique prefix", "abc", "abc123", nil, ""},
		{"one character", "f", "", errdefs.ErrInvalidArgument, `container ID prefix "f" is ambiguous`},
		{"ambiguous prefix", "ab", "", errdefs.ErrInvalidArgument, `container ID prefix "ab" is ambiguous`},
		{"full ID that prefixes another", "ff00", "ff00", nil, ""},
		{"missing", "0", "", errdefs.ErrNotFound, `container "0" not found`},
		{"longer than any ID", "abc1234", "", errdefs.ErrNotFound, `container "abc1234" not found`},
		{"empty", "", "", errdefs.ErrInvalidArgument, "container_id is empty"},
	}
	x := NewIndex[string]("container", "container_id")
	for _, id := range ids {
		x.Add(id, "v"+id)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := x.Get(tc.id)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || err.Error() != tc.wantMsg {
					t.Fatalf("Get(%q): %v, want %v %q", tc.id, err, tc.wantErr, tc.wantMsg)
				}
				return
			}
			if err != nil || got != "v"+tc.want {
				t.Fatalf("Get(%q) = %q, %v; want v%s", tc.id, got, err, tc.want)
			}
		})
	}
}

func TestIndexEmpty(t *testing.T) {
	x := NewIndex[int]("pod sandbox", "pod_sandbox_id")
	if _, err := x.Get("a"); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != `pod sandbox "a" not found` {
		t.Errorf("Get in an empty index: %v", err)
	}
	if _, err := x.Get(""); !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != "pod_sandbox_id is empty" {
		t.Errorf("Get of an empty ID: %v", err)
	}
	if l := x.List(); len(l) != 0 {
		t.Errorf("List of an empty index: %v", l)
	}
}

func TestIndexAddDeleteList(t *testing.T) {
	x := NewIndex[string]("container", "container_id")
	x.Add("a1", "first")
	x.Add("a1", "second") // replaces
	x.Add("b2", "other")
	x.Delete("b2")
	x.Delete("nothing") // no error
	if got, err := x.Get("a"); err != nil || got != "second" {
		t.Errorf("Get(a) = %q, %v", got, err)
	}
	if _, err := x.Get("b2"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get of a deleted ID: %v", err)
	}
	x.Add("c3", "third")
	l := x.List()
	sort.Strings(l)
	if strings.Join(l, ",") != "second,third" {
		t.Errorf("List = %v", l)
	}
}
