package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func reg(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
func dir(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755} }
func sym(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}
}
func hard(name, target string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}
}

func TestEntryChecker(t *testing.T) {
	cases := []struct {
		name    string
		entries []tar.Header
		bad     string // the first entry refused, "" for none
		reason  string // part of the reason
	}{
		{"plain tree", []tar.Header{dir("bin/"), reg("bin/busybox"), hard("bin/sh", "bin/busybox"), sym("bin/ls", "busybox")}, "", ""},
		{"absolute and dotted names stay inside", []tar.Header{reg("/etc/passwd"), reg("./etc/group"), reg("a/../b")}, "", ""},
		{"absolute symlinks are fine when not followed", []tar.Header{sym("etc/localtime", "/usr/share/zoneinfo/UTC"), sym("bin/sh", "/bin/busybox"), reg("etc/localtime")}, "", ""},
		{"relative symlink inside the layer may be followed", []tar.Header{sym("lib", "usr/lib"), reg("lib/libc.so"), sym("usr/lib64", "../lib"), reg("usr/lib64/x")}, "", ""},
		{"symlink replaced by a directory", []tar.Header{sym("x", "/etc"), dir("x/"), reg("x/passwd")}, "", ""},
		{"symlink replaced by a file then used as directory", []tar.Header{sym("x", "/etc"), reg("x"), reg("y")}, "", ""},
		{"symlink whited out", []tar.Header{sym("x", "/etc"), reg(".wh.x"), dir("x"), reg("x/passwd")}, "", ""},
		{"dot dot", []tar.Header{reg("../../etc/passwd")}, "../../etc/passwd", "outside the layer"},
		{"dot dot after absolute", []tar.Header{reg("/../etc/passwd")}, "/../etc/passwd", "outside the layer"},
		{"dot dot in the middle", []tar.Header{reg("a/../../b")}, "a/../../b", "outside the layer"},
		{"directory dot dot", []tar.Header{dir("../x/")}, "../x/", "outside the layer"},
		{"symlink named outside", []tar.Header{sym("../x", "y")}, "../x", "outside the layer"},
		{"through absolute symlink", []tar.Header{sym("x", "/etc"), reg("x/passwd")}, "x/passwd", `symlink "x" -> "/etc", an absolute path`},
		{"through absolute symlink, deeper", []tar.Header{dir("a/"), sym("a/b", "/etc"), reg("a/b/c/d")}, "a/b/c/d", "absolute path"},
		{"through escaping relative symlink", []tar.Header{dir("a/"), sym("a/up", "../../.."), reg("a/up/etc/passwd")}, "a/up/etc/passwd", "leaves the layer"},
		{"through a chain of symlinks", []tar.Header{sym("a", "b"), sym("b", "/etc"), reg("a/passwd")}, "a/passwd", `symlink "b" -> "/etc"`},
		{"symlink to root then dot dot", []tar.Header{sym("r", "."), reg("r/x"), sym("r/up", ".."), reg("r/up/x")}, "r/up/x", "leaves the layer"},
		{"symlink loop", []tar.Header{sym("a", "b"), sym("b", "a"), reg("a/x")}, "a/x", "too many symlinks"},
		{"hard link outside", []tar.Header{hard("h", "../../etc/shadow")}, "h", "hard link"},
		{"hard link through absolute symlink", []tar.Header{sym("x", "/etc"), hard("h", "x/shadow")}, "h", "hard link whose target"},
		{"hard link named through symlink", []tar.Header{sym("x", "/etc"), reg("f"), hard("x/h", "f")}, "x/h", "absolute path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c entryChecker
			bad, reason := "", ""
			for i := range tc.entries {
				if r := c.check(&tc.entries[i]); r != "" {
					bad, reason = tc.entries[i].Name, r
					break
				}
			}
			if bad != tc.bad || !strings.Contains(reason, tc.reason) {
				t.Errorf("refused %q (%q); want %q (%q)", bad, reason, tc.bad, tc.reason)
			}
		})
	}
}

// layerBlob is a tar of entries, gzipped when gz.
func layerBlob(t *testing.T, gz bool, entries ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var z *gzip.Writer
	if gz {
		z = gzip.NewWriter(&buf)
		w = z
	}
	tw := tar.NewWriter(w)
	for _, h := range entries {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = strings.Repeat("x", 70000) // more than one read
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if z != nil {
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestCheckedBlob: the blob passes through unchanged; an escaping entry
// turns into an *EscapeError from Read before the stream ends well.
func TestCheckedBlob(t *testing.T) {
	good := []tar.Header{dir("bin/"), reg("bin/busybox"), sym("bin/sh", "busybox")}
	bad := []tar.Header{reg("a"), sym("x", "/etc"), reg("x/passwd"), reg("b"), reg("c")}
	for _, gz := range []bool{false, true} {
		for _, tc := range []struct {
			name    string
			entries []tar.Header
			escape  string
		}{{"good", good, ""}, {"bad", bad, "x/passwd"}} {
			blob := layerBlob(t, gz, tc.entries...)
			b := newCheckedBlob(io.NopCloser(bytes.NewReader(blob)), "sha256:feed")
			got, err := io.ReadAll(b)
			var escape *EscapeError
			switch {
			case tc.escape == "" && err != nil:
				t.Errorf("gzip %v, %s: %v", gz, tc.name, err)
			case tc.escape == "" && !bytes.Equal(got, blob):
				t.Errorf("gzip %v, %s: blob changed in passing", gz, tc.name)
			case tc.escape != "" && !errors.As(err, &escape):
				t.Errorf("gzip %v, %s: got %v; want an EscapeError", gz, tc.name, err)
			case tc.escape != "" && (escape.Entry != tc.escape || escape.Layer != "sha256:feed"):
				t.Errorf("gzip %v, %s: %v; want entry %q of layer sha256:feed", gz, tc.name, escape, tc.escape)
			}
			if err := b.Close(); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestCheckedBlobClosedEarly: closing a blob half read ends its check.
func TestCheckedBlobClosedEarly(t *testing.T) {
	blob := layerBlob(t, true, reg("a"), reg("b"))
	b := newCheckedBlob(io.NopCloser(bytes.NewReader(blob)), "sha256:feed")
	if _, err := b.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.result(); !errors.Is(err, errBlobClosed) {
		t.Errorf("check ended with %v; want %v", err, errBlobClosed)
	}
}

func TestCheckLayerNotTar(t *testing.T) {
	err := checkLayer(strings.NewReader(strings.Repeat("not a tar ", 100)), "sha256:feed")
	if err == nil || !strings.Contains(err.Error(), "sha256:feed is not a valid tar stream") {
		t.Errorf("got %v", err)
	}
}

func TestIsLayerMediaType(t *testing.T) {
	for mt, want := range map[string]bool{
		"":                                       true,
		"application/vnd.oci.image.layer.v1.tar": true,
		"application/vnd.oci.image.layer.v1.tar+gzip":               true,
		"application/vnd.oci.image.layer.v1.tar+zstd":               true,
		"application/vnd.docker.image.rootfs.diff.tar.gzip":         true,
		"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": true,
		"application/vnd.oci.image.layer.v1.tar+gzip+encrypted":     false,
		"application/vnd.oci.image.config.v1+json":                  false,
		"application/vnd.docker.container.image.v1+json":            false,
	} {
		if got := isLayerMediaType(mt); got != want {
			t.Errorf("isLayerMediaType(%q) = %v", mt, got)
		}
	}
}

func TestLoadPolicyRefusesSigstore(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		policy string
		ok     bool
	}{
		"accept":   {`{"default":[{"type":"insecureAcceptAnything"}]}`, true},
		"gpg":      {`{"default":[{"type":"reject"}],"transports":{"docker":{"example.com":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}]}}}`, true},
		"sigstore": {`{"default":[{"type":"reject"}],"transports":{"docker":{"example.com":[{"type":"sigstoreSigned","keyPath":"/k.pub","signedIdentity":{"type":"matchRepository"}}]}}}`, false},
	} {
		p := filepath.Join(dir, name+".json")
		if err := os.WriteFile(p, []byte(tc.policy), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadPolicy(p)
		if (err == nil) != tc.ok {
			t.Errorf("%s: loadPolicy: %v", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "sigstoreSigned requirements are not supported") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
