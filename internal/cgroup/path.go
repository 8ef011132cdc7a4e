// Package cgroup maps crib's pods and containers to cgroups under either
// cgroup driver, and creates and removes the cgroup parents pods need.
//
// Under the cgroupfs driver a pod's parent is a path below each
// hierarchy's root (/crib, kubelet's /kubepods/besteffort/pod<uid>) and a
// pod's or container's cgroup is <parent>/<id>. Under the systemd driver
// the parent is a slice (crib.slice, kubelet's
// kubepods-besteffort-pod<uid>.slice) and each pod (its pause process) and
// container runs in a transient scope crib-<id>.scope in that slice,
// created over D-Bus by libcontainer's systemd manager from runc's
// "slice:prefix:name" cgroupsPath.
package cgroup

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/cgroups/systemd"
)

// Driver is the cgroup manager, as in kubelet's cgroupDriver.
type Driver string

// The drivers crib offers (config key runtime.cgroup_driver).
const (
	Cgroupfs Driver = "cgroupfs"
	Systemd  Driver = "systemd"
)

// ScopePrefix names crib's systemd scopes: crib-<id>.scope, as containerd's
// are cri-containerd-<id>.scope and CRI-O's crio-<id>.scope.
const ScopePrefix = "crib"

// RecordDriver is the driver a pod record names: "" (records older than
// the field) is cgroupfs.
func RecordDriver(s string) Driver {
	if s == "" {
		return Cgroupfs
	}
	return Driver(s)
}

// DefaultParent is the parent of pods whose request names none.
func DefaultParent(d Driver) string {
	if d == Systemd {
		return "crib.slice"
	}
	return "/crib"
}

// CheckParent reports why parent cannot be a pod's cgroup parent under
// driver d: an absolute, clean path under cgroupfs; a slice name under
// systemd.
func CheckParent(d Driver, parent string) error {
	switch d {
	case Cgroupfs, "":
		if strings.HasSuffix(parent, ".slice") && !strings.Contains(parent, "/") {
			return fmt.Errorf("%q is a systemd slice, but the cgroup driver is cgroupfs: give an absolute path such as /kubepods/besteffort/pod<uid>", parent)
		}
		if !path.IsAbs(parent) || path.Clean(parent) != parent {
			return fmt.Errorf("%q is not a clean absolute path, which the cgroupfs driver needs (such as /kubepods/besteffort/pod<uid>)", parent)
		}
		return nil
	case Systemd:
		if strings.Contains(parent, "/") {
			return fmt.Errorf("%q is a path, but the cgroup driver is systemd: give a slice name such as kubepods-besteffort-pod<uid>.slice", parent)
		}
		if err := checkSliceName(parent); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown cgroup driver %q", d)
}

// Parent checks parent as CheckParent does and returns the form crib keeps
// in records and cgroupsPaths. Under systemd kubelet sends the pod's slice
// as the path systemd gives it
// (/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice);
// that path names its last slice, so it becomes that slice's name. Any
// other path under systemd stays an error.
func Parent(d Driver, parent string) (string, error) {
	if d == Systemd && strings.HasPrefix(parent, "/") {
		slice := path.Base(parent)
		if err := checkSliceName(slice); err != nil {
			return "", fmt.Errorf("%q is a path, but the cgroup driver is systemd: give a slice name such as kubepods-besteffort-pod<uid>.slice", parent)
		}
		if expanded, err := systemd.ExpandSlice(slice); err != nil || expanded != parent {
			return "", fmt.Errorf("%q is a path, but the cgroup driver is systemd: give a slice name such as kubepods-besteffort-pod<uid>.slice, or its full path such as /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice", parent)
		}
		return slice, nil
	}
	if err := CheckParent(d, parent); err != nil {
		return "", err
	}
	return parent, nil
}

// checkSliceName accepts what systemd accepts as a slice below the root
// slice and runc's "slice:prefix:name" can carry.
func checkSliceName(s string) error {
	if s == "-.slice" {
		return fmt.Errorf("%q is the root slice: pods need a slice below it such as crib.slice", s)
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
		default:
			return fmt.Errorf("%q is not a systemd slice name: %q is not allowed in one", s, r)
		}
	}
	if _, err := systemd.ExpandSlice(s); err != nil {
		return fmt.Errorf("%q is not a systemd slice name (such as kubepods-besteffort-pod<uid>.slice): %w", s, err)
	}
	return nil
}

// Path is the OCI cgroupsPath of the pod or container id with the given
// parent: <parent>/<id> under cgroupfs, <slice>:crib:<id> under systemd.
func Path(d Driver, parent, id string) string {
	if d == Systemd {
		return parent + ":" + ScopePrefix + ":" + id
	}
	return path.Join(parent, id)
}

// IsSystemd reports whether an OCI cgroupsPath is in runc's systemd form
// "slice:prefix:name" rather than a cgroupfs path.
func IsSystemd(cgroupsPath string) bool {
	return !strings.HasPrefix(cgroupsPath, "/") && strings.Count(cgroupsPath, ":") == 2
}

// Scope is a systemd cgroupsPath taken apart.
type Scope struct {
	Slice  string // the parent slice, e.g. kubepods-besteffort-pod1234.slice
	Prefix string // crib
	Name   string // the pod's or container's ID
}

// Unit is the scope's unit name: <prefix>-<name>.scope.
func (s Scope) Unit() string { return s.Prefix + "-" + s.Name + ".scope" }

// ParseScope takes apart a systemd cgroupsPath.
func ParseScope(cgroupsPath string) (Scope, error) {
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" || strings.Contains(cgroupsPath, "/") {
		return Scope{}, fmt.Errorf("cgroupsPath %q is not of the systemd form slice:prefix:name", cgroupsPath)
	}
	if err := checkSliceName(parts[0]); err != nil {
		return Scope{}, fmt.Errorf("cgroupsPath %q: %w", cgroupsPath, err)
	}
	return Scope{Slice: parts[0], Prefix: parts[1], Name: parts[2]}, nil
}

// CheckPath reports why cgroupsPath cannot be a pod's or container's
// cgroup: a clean absolute path below the root, or a systemd
// slice:prefix:name. A relative cgroupfs path would be resolved against the
// shim's own cgroup.
func CheckPath(cgroupsPath string) error {
	if IsSystemd(cgroupsPath) {
		_, err := ParseScope(cgroupsPath)
		return err
	}
	if !path.IsAbs(cgroupsPath) || path.Clean(cgroupsPath) != cgroupsPath || cgroupsPath == "/" {
		return fmt.Errorf("cgroupsPath %q must be a clean absolute path below the root, or slice:prefix:name for the systemd driver", cgroupsPath)
	}
	return nil
}

// Dir is the cgroup directory of cgroupsPath relative to each hierarchy's
// root (for v2, the unified mount): the path itself under cgroupfs; the
// scope below its expanded slice under systemd, e.g.
// /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/crib-<id>.scope.
func Dir(cgroupsPath string) (string, error) {
	if !IsSystemd(cgroupsPath) {
		if err := CheckPath(cgroupsPath); err != nil {
			return "", err
		}
		return cgroupsPath, nil
	}
	s, err := ParseScope(cgroupsPath)
	if err != nil {
		return "", err
	}
	slice, err := SliceDir(s.Slice)
	if err != nil {
		return "", err
	}
	return path.Join(slice, s.Unit()), nil
}

// SliceDir is a slice's cgroup directory relative to the root:
// a-b.slice is /a.slice/a-b.slice.
func SliceDir(slice string) (string, error) {
	return systemd.ExpandSlice(slice)
}

// ParentDir is the directory of a pod parent relative to each hierarchy's
// root, under either driver.
func ParentDir(d Driver, parent string) (string, error) {
	if d == Systemd {
		return SliceDir(parent)
	}
	if parent == "" {
		return "", errors.New("empty cgroup parent")
	}
	return parent, nil
}
