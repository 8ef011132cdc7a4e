package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/state"
)

// ledgerVersion is the version of the ledger file written by this build.
const ledgerVersion = 1

// ledgerFile is the on-disk record of what Parents created.
type ledgerFile struct {
	Version int `json:"version"`
	// Dirs are cgroupfs directories crib made: a hierarchy's mount point
	// and the path below it.
	Dirs []ledgerDir `json:"dirs,omitempty"`
	// Slices are systemd slices crib started.
	Slices []string `json:"slices,omitempty"`
}

type ledgerDir struct {
	Hierarchy string `json:"hierarchy"`
	Path      string `json:"path"`
}

// Parents creates the cgroup parents pods need and removes them again: a
// parent and any of its ancestors that did not exist (cgroupfs: in a
// hierarchy; systemd: as an active slice) are made before the pod's first
// cgroup, and each goes once no pod of this cribd is under it and it is
// empty. What crib made is written to a ledger file before it is made, so
// that a cribd killed at any point finds it again; what crib did not make
// (kubelet's /kubepods tree, its pod slices) is never removed.
//
// Users are counted in memory: a pod counts from Acquire (or Use, for
// pods found at start) to Release. Acquire and Release are serialised, so
// a removal never races a pod creating below the same parent. Removal
// stops at a parent that is still busy (EBUSY: something not crib's is in
// it) and keeps it in the ledger for a later try.
type Parents struct {
	file        string
	hierarchies []string
	units       Units

	mu     sync.Mutex
	dirs   map[ledgerDir]bool
	slices map[string]bool
	users  map[string]string // pod ID → its parent's directory below the root
}

// ParentsOptions configures Parents.
type ParentsOptions struct {
	// File is the ledger, e.g. /run/crib/cgroups.json: its lifetime is
	// the cgroups', which a reboot ends too.
	File string
	// Hierarchies are the cgroup mount points (Hierarchies()); tests give
	// plain directories.
	Hierarchies []string
	// Units is systemd, for the systemd driver; nil when systemd is not
	// used (then a ledger's slices are left alone).
	Units Units
}

// NewParents loads the ledger, if any.
func NewParents(opts ParentsOptions) (*Parents, error) {
	p := &Parents{
		file:        opts.File,
		hierarchies: opts.Hierarchies,
		units:       opts.Units,
		dirs:        map[ledgerDir]bool{},
		slices:      map[string]bool{},
		users:       map[string]string{},
	}
	var lf ledgerFile
	err := state.ReadJSON(opts.File, &lf)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("cgroup ledger: %w", err)
	case lf.Version > ledgerVersion:
		return nil, fmt.Errorf("cgroup ledger %s: version %d is newer than this cribd's %d", opts.File, lf.Version, ledgerVersion)
	}
	for _, d := range lf.Dirs {
		p.dirs[d] = true
	}
	for _, s := range lf.Slices {
		p.slices[s] = true
	}
	return p, nil
}

// save writes the ledger; the caller holds p.mu.
func (p *Parents) save() error {
	lf := ledgerFile{Version: ledgerVersion}
	for d := range p.dirs {
		lf.Dirs = append(lf.Dirs, d)
	}
	sort.Slice(lf.Dirs, func(i, j int) bool {
		a, b := lf.Dirs[i], lf.Dirs[j]
		return a.Hierarchy < b.Hierarchy || a.Hierarchy == b.Hierarchy && a.Path < b.Path
	})
	for s := range p.slices {
		lf.Slices = append(lf.Slices, s)
	}
	sort.Strings(lf.Slices)
	if err := os.MkdirAll(filepath.Dir(p.file), 0o711); err != nil {
		return fmt.Errorf("cgroup ledger: %w", err)
	}
	return state.WriteJSON(p.file, lf)
}

// Use counts pod as a user of parent without creating anything: for pods
// cribd finds at start.
func (p *Parents) Use(pod string, d Driver, parent string) error {
	dir, err := ParentDir(d, parent)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[pod] = dir
	return nil
}

// Acquire counts pod as a user of parent and makes parent and whichever of
// its ancestors are missing, recording each in the ledger first. On error
// the pod still counts: the caller's Release undoes what was made.
func (p *Parents) Acquire(ctx context.Context, pod string, d Driver, parent string) error {
	if err := CheckParent(d, parent); err != nil {
		return err
	}
	dir, err := ParentDir(d, parent)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[pod] = dir
	if d == Systemd {
		return p.acquireSlices(ctx, parent)
	}
	return p.acquireDirs(dir)
}

// acquireDirs makes the missing directories of dir (parents first) in
// every hierarchy.
func (p *Parents) acquireDirs(dir string) error {
	var missing []ledgerDir
	for _, h := range p.hierarchies {
		for _, a := range ancestors(dir) {
			if _, err := os.Lstat(filepath.Join(h, a)); err == nil {
				continue
			}
			missing = append(missing, ledgerDir{Hierarchy: h, Path: a})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	for _, m := range missing {
		p.dirs[m] = true
	}
	if err := p.save(); err != nil {
		return err
	}
	changed := false
	for _, m := range missing {
		err := os.Mkdir(filepath.Join(m.Hierarchy, m.Path), 0o755)
		if errors.Is(err, os.ErrExist) {
			// Made by someone else between the look and the mkdir.
			delete(p.dirs, m)
			changed = true
			continue
		}
		if err != nil {
			if changed {
				_ = p.save()
			}
			return fmt.Errorf("create cgroup %s: %w", filepath.Join(m.Hierarchy, m.Path), err)
		}
	}
	if changed {
		return p.save()
	}
	return nil
}

// acquireSlices starts slice unless active, recording it and each inactive
// slice above it (which systemd starts with it) first.
func (p *Parents) acquireSlices(ctx context.Context, slice string) error {
	if p.units == nil {
		return errors.New("the systemd driver has no connection to systemd")
	}
	var missing []string
	for s := slice; s != ""; s = parentSlice(s) {
		active, err := p.units.Active(ctx, s)
		if err != nil {
			return err
		}
		if active {
			break // and so is every slice above it
		}
		missing = append(missing, s)
	}
	if len(missing) == 0 {
		return nil
	}
	for _, s := range missing {
		p.slices[s] = true
	}
	if err := p.save(); err != nil {
		return err
	}
	return p.units.StartSlice(ctx, slice)
}

// Release stops counting pod as a user of its parent and removes what
// crib made at or above the parent that no pod uses any more and that is
// empty. Busy cgroups stay (in the ledger) and are not an error. Release
// is idempotent.
func (p *Parents) Release(ctx context.Context, pod string, d Driver, parent string) error {
	dir, err := ParentDir(d, parent)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.users, pod)
	return p.removeUnused(ctx, dir)
}

// Sweep removes every cgroup in the ledger that no pod uses and that is
// empty: at start, for what a killed cribd left.
func (p *Parents) Sweep(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.removeUnused(ctx, "/")
}

// removeUnused removes the ledger's cgroups on the path from the root to
// under (everything, for "/"), deepest first, that no user's parent is at
// or below. The caller holds p.mu.
func (p *Parents) removeUnused(ctx context.Context, under string) error {
	type cand struct {
		dir   string // below the root
		slice string // "" for a cgroupfs directory
		ld    ledgerDir
	}
	var cands []cand
	related := func(dir string) bool {
		return under == "/" || dir == under || isBelow(under, dir) || isBelow(dir, under)
	}
	for ld := range p.dirs {
		if related(ld.Path) {
			cands = append(cands, cand{dir: ld.Path, ld: ld})
		}
	}
	if p.units != nil {
		for s := range p.slices {
			dir, err := SliceDir(s)
			if err == nil && related(dir) {
				cands = append(cands, cand{dir: dir, slice: s})
			}
		}
	}
	// Deepest first: a directory before its parent.
	sort.Slice(cands, func(i, j int) bool {
		if a, b := strings.Count(cands[i].dir, "/"), strings.Count(cands[j].dir, "/"); a != b {
			return a > b
		}
		return cands[i].dir < cands[j].dir
	})
	var errs []error
	changed := false
	for _, c := range cands {
		if p.inUse(c.dir) {
			continue
		}
		var gone bool
		var err error
		if c.slice != "" {
			gone, err = p.removeSlice(ctx, c.slice, c.dir)
		} else {
			gone, err = removeDir(filepath.Join(c.ld.Hierarchy, c.ld.Path))
		}
		if err != nil {
			errs = append(errs, err)
		}
		if !gone {
			continue
		}
		if c.slice != "" {
			delete(p.slices, c.slice)
		} else {
			delete(p.dirs, c.ld)
		}
		changed = true
	}
	if changed {
		if err := p.save(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// inUse reports whether some user's parent is dir or below it.
func (p *Parents) inUse(dir string) bool {
	for _, u := range p.users {
		if u == dir || isBelow(u, dir) {
			return true
		}
	}
	return false
}

// removeDir removes an empty cgroup directory. gone is false while it is
// busy (a cgroup, or processes, still in it).
func removeDir(dir string) (gone bool, err error) {
	err = unix.Rmdir(dir)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return true, nil
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
		return false, nil
	}
	return false, fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// removeSlice stops slice unless a cgroup (a unit not crib's, or a pod's
// scope still going away) is still in it: stopping a slice stops all that
// runs in it.
func (p *Parents) removeSlice(ctx context.Context, slice, dir string) (gone bool, err error) {
	for _, h := range p.hierarchies {
		ents, err := os.ReadDir(filepath.Join(h, dir))
		if err != nil {
			continue // not in this hierarchy
		}
		for _, e := range ents {
			if e.IsDir() {
				return false, nil
			}
		}
	}
	if err := p.units.Stop(ctx, slice); err != nil {
		return false, fmt.Errorf("remove slice: %w", err)
	}
	return true, nil
}

// ancestors lists dir and the directories above it, below the root,
// outermost first: /a/b → /a, /a/b.
func ancestors(dir string) []string {
	var out []string
	for d := path.Clean(dir); d != "/" && d != "." && d != ""; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

// parentSlice is the slice a slice sits in, "" for one directly in the
// root slice: a-b-c.slice → a-b.slice, a.slice → "".
func parentSlice(s string) string {
	name := strings.TrimSuffix(s, ".slice")
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return ""
	}
	return name[:i] + ".slice"
}
