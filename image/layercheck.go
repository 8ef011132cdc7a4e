package image

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"go.podman.io/storage/pkg/archive"
)

// A layer is a tar stream the storage library unpacks in a chroot, which
// keeps every entry inside the layer: a `../` name is clamped at the
// layer's root and an absolute symlink resolves inside it. Such a layer
// is still broken or hostile, and unpacked anywhere else (a plain
// extractor, another runtime) it would write to the host, so a pull
// refuses it instead of storing a silently different tree. checkLayer
// reads the entries' headers only; unpacking stays the library's job.

// EscapeError reports a layer entry that reaches outside the layer.
type EscapeError struct {
	Layer  string // the layer blob's digest
	Entry  string // the entry's name as the tar gives it
	Reason string
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("layer %s: entry %q %s", e.Layer, e.Entry, e.Reason)
}

// maxSymlinkHops bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinkHops = 40

// entryChecker follows a layer's entries in order and remembers the
// symlinks the layer itself creates, since unpacking follows those when a
// later entry names a path through one.
type entryChecker struct {
	symlinks map[string]string // where a symlink lands (parents resolved) → its target
}

// check rejects an entry that names a path above the layer's root, a hard
// link whose target does, or an entry (or hard-link target) under a
// symlink of this layer that points to an absolute path or above the
// root. It returns a reason, or "" when the entry is fine.
func (c *entryChecker) check(hdr *tar.Header) string {
	name, ok := inRoot(hdr.Name)
	if !ok {
		return "names a path outside the layer"
	}
	where, reason := c.resolve(name)
	if reason != "" {
		return reason
	}
	if hdr.Typeflag == tar.TypeLink {
		target, ok := inRoot(hdr.Linkname)
		if !ok {
			return fmt.Sprintf("is a hard link to %q, outside the layer", hdr.Linkname)
		}
		if _, reason := c.resolve(target); reason != "" {
			return "is a hard link whose target " + reason
		}
	}
	c.record(where, hdr)
	return ""
}

// record notes what the entry landing at name (parents resolved) does to
// the layer's symlinks: it makes one, replaces one (the library removes
// what is in the way), or whites one out.
func (c *entryChecker) record(name string, hdr *tar.Header) {
	dir, base := path.Split(name)
	if strings.HasPrefix(base, archive.WhiteoutPrefix) {
		if base == archive.WhiteoutOpaqueDir {
			return // hides the lower layers' entries only
		}
		c.forget(path.Join(dir, strings.TrimPrefix(base, archive.WhiteoutPrefix)))
		return
	}
	if hdr.Typeflag == tar.TypeSymlink {
		if c.symlinks == nil {
			c.symlinks = make(map[string]string)
		}
		c.symlinks[name] = hdr.Linkname
		return
	}
	// A file or directory replaces a symlink there. (A file replacing a
	// directory also drops the symlinks under it; remembering those is at
	// worst strict, and scanning for them on every entry would cost.)
	delete(c.symlinks, name)
}

// forget drops the symlinks at p and under it.
func (c *entryChecker) forget(p string) {
	for k := range c.symlinks {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(c.symlinks, k)
		}
	}
}

// resolve resolves the parent directories of name through the layer's
// symlinks (the last component is never followed: the library replaces
// it). It returns where the entry lands, or why that is outside the layer.
func (c *entryChecker) resolve(name string) (string, string) {
	dir, base := path.Split(name)
	if len(c.symlinks) == 0 || dir == "" {
		return name, ""
	}
	resolved := ""
	rest := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	for hops := 0; len(rest) > 0; {
		next := path.Join(resolved, rest[0])
		rest = rest[1:]
		target, ok := c.symlinks[next]
		if !ok {
			resolved = next
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Sprintf("is reached through too many symlinks (at %q)", next)
		}
		if path.IsAbs(target) {
			return "", fmt.Sprintf("would be written through symlink %q -> %q, an absolute path", next, target)
		}
		joined, ok := inRoot(path.Join(resolved, target))
		if !ok {
			return "", fmt.Sprintf("would be written through symlink %q -> %q, which leaves the layer", next, target)
		}
		resolved = ""
		if joined != "." {
			rest = append(strings.Split(joined, "/"), rest...)
		}
	}
	return path.Join(resolved, base), ""
}

// inRoot cleans an entry name relative to the layer's root ("/a/./b" and
// "a/b/" become "a/b"; the root is "."); ok is false when it climbs above
// the root.
func inRoot(name string) (string, bool) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return p, false
	}
	return p, true
}

// checkLayer reads the layer blob r (compressed or not) to its end and
// returns an *EscapeError for the first entry that reaches outside it.
func checkLayer(r io.Reader, layer string) error {
	br := bufio.NewReaderSize(r, 32<<10)
	head, err := br.Peek(10)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var plain io.Reader = br
	switch archive.DetectCompression(head) {
	case archive.Uncompressed:
	case archive.Gzip:
		// klauspost's inflater takes about two thirds of the standard
		// library's CPU time; unlike pgzip (the storage library's) it
		// starts no read-ahead goroutines, which this check does not need.
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("layer %s: %w", layer, err)
		}
		defer gz.Close()
		plain = gz
	default:
		d, err := archive.DecompressStream(br)
		if err != nil {
			return fmt.Errorf("layer %s: %w", layer, err)
		}
		defer d.Close()
		plain = d
	}
	tr := tar.NewReader(plain)
	var c entryChecker
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %s is not a valid tar stream: %w", layer, err)
		}
		if reason := c.check(hdr); reason != "" {
			return &EscapeError{Layer: layer, Entry: hdr.Name, Reason: reason}
		}
	}
	// Padding after the end-of-archive marker still belongs to the blob.
	_, err = io.Copy(io.Discard, plain)
	return err
}
