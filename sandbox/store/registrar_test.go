package store

import (
	"errors"
	"testing"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestRegistrar(t *testing.T) {
	type op struct {
		release  bool // Release instead of Reserve
		name, id string
		wantHeld string // for Reserve: the holder a *ReservedError names; "" is success
	}
	tests := []struct {
		name string
		ops  []op
		// want is who holds "a" at the end; "" is no one.
		want string
	}{
		{"reserve", []op{{name: "a", id: "1"}}, "1"},
		{"reserve twice, same ID", []op{{name: "a", id: "1"}, {name: "a", id: "1"}}, "1"},
		{"reserve twice, other ID", []op{{name: "a", id: "1"}, {name: "a", id: "2", wantHeld: "1"}}, "1"},
		{"other names are free", []op{{name: "a", id: "1"}, {name: "b", id: "2"}}, "1"},
		{"release", []op{{name: "a", id: "1"}, {release: true, name: "a", id: "1"}}, ""},
		{"release by the wrong ID keeps it", []op{{name: "a", id: "1"}, {release: true, name: "a", id: "2"}}, "1"},
		{"release of a free name", []op{{release: true, name: "a", id: "1"}}, ""},
		{"reserve after release", []op{{name: "a", id: "1"}, {release: true, name: "a", id: "1"}, {name: "a", id: "2"}}, "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistrar()
			for i, o := range tc.ops {
				if o.release {
					r.Release(o.name, o.id)
					continue
				}
				err := r.Reserve(o.name, o.id)
				if o.wantHeld == "" {
					if err != nil {
						t.Fatalf("op %d: Reserve(%q, %q): %v", i, o.name, o.id, err)
					}
					continue
				}
				var re *ReservedError
				if !errors.As(err, &re) || re.Name != o.name || re.ID != o.wantHeld || !errors.Is(err, errdefs.ErrAlreadyExists) {
					t.Fatalf("op %d: Reserve(%q, %q): %v, want a ReservedError naming %s that is AlreadyExists", i, o.name, o.id, err, o.wantHeld)
				}
			}
			got, ok := r.Get("a")
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("Get(a) = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestRegistrarEmpty(t *testing.T) {
	r := NewRegistrar()
	for _, c := range [][2]string{{"", "1"}, {"a", ""}} {
		if err := r.Reserve(c[0], c[1]); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Reserve(%q, %q): %v, want InvalidArgument", c[0], c[1], err)
		}
	}
}
