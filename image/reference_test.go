package image

import (
	"errors"
	"testing"

	"github.com/crib-runtime/crib/api/errdefs"
)

func TestNormalize(t *testing.T) {
	const dgst = "sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf"
	tests := []struct {
		in, want, pull string
		wantErr        bool
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "library/busybox", want: "docker.io/library/busybox:latest"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "user/app:v1", want: "docker.io/user/app:v1"},
		{in: "registry.k8s.io/pause:3.9", want: "registry.k8s.io/pause:3.9"},
		{in: "localhost:5000/x", want: "localhost:5000/x:latest"},
		{in: "127.0.0.1:5000/x:y", want: "127.0.0.1:5000/x:y"},
		{in: "gcr.io/a/b@" + dgst, want: "gcr.io/a/b@" + dgst},
		{in: "gcr.io/a/b:t@" + dgst, want: "gcr.io/a/b:t@" + dgst, pull: "gcr.io/a/b@" + dgst},
		{in: "", wantErr: true},
		{in: "Not A/Reference::x", wantErr: true},
		{in: "UPPER/case", wantErr: true},
		{in: "busybox@sha256:short", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			named, err := Normalize(tc.in)
			if tc.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("Normalize(%q) = %v, %v; want InvalidArgument", tc.in, named, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if named.String() != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, named, tc.want)
			}
			pull := tc.pull
			if pull == "" {
				pull = tc.want
			}
			if got := pullable(named).String(); got != pull {
				t.Errorf("pullable(%q) = %q, want %q", tc.in, got, pull)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	const hex = "4c3535edf3fec8f0383ec42f8eb27b1eea0458296ed441f4838e11607cd8669e"
	tests := []struct {
		in       string
		full     bool
		prefix   string // "" when not an ID prefix
		isPrefix bool
	}{
		{in: hex, full: true, prefix: hex, isPrefix: true},
		{in: "sha256:" + hex, full: true, prefix: hex, isPrefix: true},
		{in: hex[:13], prefix: hex[:13], isPrefix: true},
		{in: "sha256:" + hex[:5], prefix: hex[:5], isPrefix: true},
		{in: "busybox"},
		{in: "sha256:"},
		{in: hex + "0"},
		{in: "ABCDEF"},
		{in: "sha512:" + hex},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			id, err := ParseID(tc.in)
			if tc.full != (err == nil) {
				t.Fatalf("ParseID(%q) error %v, want full=%v", tc.in, err, tc.full)
			}
			if tc.full {
				if id.CRIString() != "sha256:"+hex || id.StoreKey() != hex {
					t.Errorf("ParseID(%q) = %s / %s", tc.in, id.CRIString(), id.StoreKey())
				}
			} else if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseID(%q) error %v is not InvalidArgument", tc.in, err)
			}
			p, ok := idPrefix(tc.in)
			if ok != tc.isPrefix || p != tc.prefix {
				t.Errorf("idPrefix(%q) = %q, %v; want %q, %v", tc.in, p, ok, tc.prefix, tc.isPrefix)
			}
		})
	}
}

func TestParseUser(t *testing.T) {
	tests := []struct {
		user     string
		uid      int64
		hasUID   bool
		username string
	}{
		{user: ""},
		{user: "1002", uid: 1002, hasUID: true},
		{user: "0", uid: 0, hasUID: true},
		{user: "1003:100", uid: 1003, hasUID: true},
		{user: "www-data", username: "www-data"},
		{user: "www-data:www-data", username: "www-data"},
		{user: ":100"},
	}
	for _, tc := range tests {
		uid, name := parseUser(tc.user)
		if (uid != nil) != tc.hasUID || (uid != nil && *uid != tc.uid) || name != tc.username {
			t.Errorf("parseUser(%q) = %v, %q; want uid %d (set %v), %q", tc.user, uid, name, tc.uid, tc.hasUID, tc.username)
		}
	}
}

func TestIsTagged(t *testing.T) {
	for name, want := range map[string]bool{
		"docker.io/library/busybox:latest": true,
		"docker.io/library/busybox@sha256:4c3535edf3fec8f0383ec42f8eb27b1eea0458296ed441f4838e11607cd8669e": false,
		"docker.io/library/busybox": false,
		"::bad":                     false,
	} {
		if got := isTagged(name); got != want {
			t.Errorf("isTagged(%q) = %v, want %v", name, got, want)
		}
	}
}
