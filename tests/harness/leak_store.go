package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The kinds of crib's own state a Snapshot holds besides the host's.
const (
	KindStoreContainer = "storage container"
	KindStoreLayer     = "storage layer"
	KindRunFile        = "file under run_dir"
)

// StoreItem is the part of a storage library record (containers.json,
// layers.json, images.json) the leak checker reads.
type StoreItem struct {
	ID     string   `json:"id"`
	Names  []string `json:"names,omitempty"`
	Parent string   `json:"parent,omitempty"` // a layer's
	Layer  string   `json:"layer,omitempty"`  // a container's layer, an image's top layer
	// MappedLayers are an image's top layers made for other ID mappings.
	MappedLayers []string `json:"mapped-layers,omitempty"`
}

// ParseStoreItems decodes one of the store's JSON arrays; an empty file is
// an empty store.
func ParseStoreItems(data []byte) ([]StoreItem, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	var items []StoreItem
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, err
	}
	return items, nil
}

// readStoreItems reads and concatenates the store's files of one kind
// (e.g. "overlay-layers/layers.json" and its volatile twin) under the
// graph and run roots. A missing file is an empty list.
func readStoreItems(roots []string, names ...string) ([]StoreItem, error) {
	var out []StoreItem
	for _, root := range roots {
		for _, name := range names {
			matches, _ := filepath.Glob(filepath.Join(root, name))
			for _, path := range matches {
				data, err := os.ReadFile(path)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, err
				}
				items, err := ParseStoreItems(data)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", path, err)
				}
				out = append(out, items...)
			}
		}
	}
	return out, nil
}

// StoreLeftovers are the store's containers (every one: crib removes a
// container's writable layer with the container) and the layers no image
// and no container reaches through its parents (an interrupted pull's, a
// writable layer whose container record is gone), each with a description.
func StoreLeftovers(containers, layers, images []StoreItem) (ctrs, orphans map[string]string) {
	ctrs, orphans = map[string]string{}, map[string]string{}
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for ; id != "" && !used[id]; id = parent[id] {
			used[id] = true
		}
	}
	for _, img := range images {
		mark(img.Layer)
		for _, l := range img.MappedLayers {
			mark(l)
		}
	}
	for _, c := range containers {
		mark(c.Layer)
		ctrs[c.ID] = fmt.Sprintf("storage container %s %v (layer %s)", c.ID, c.Names, c.Layer)
	}
	for _, l := range layers {
		if !used[l.ID] {
			orphans[l.ID] = fmt.Sprintf("storage layer %s %v, of no image or container", l.ID, l.Names)
		}
	}
	return ctrs, orphans
}

// storeLayerMount finds the layer whose directory a mount point under the
// store's overlay driver is in: <graph>/overlay/<layer>/merged.
var storeLayerMount = regexp.MustCompile(`/overlay/([0-9a-f]{64})/`)

// StoreMountLayer names the storage layer a mount point belongs to, "" if
// it is no layer's.
func StoreMountLayer(mountPoint string) string {
	if m := storeLayerMount.FindStringSubmatch(mountPoint + "/"); m != nil {
		return m[1]
	}
	return ""
}

// RunDirIdle reports whether rel, a path below run_dir, is part of what an
// idle cribd keeps there: its socket, the cgroup parents' file, the empty
// pods directory, and the store's run root bookkeeping (its directories,
// lock files, mount counts, the overlay driver's feature probes). Anything
// else (a pod's directory, a container's directory in the store, a
// rootfs bind for a user namespace, a half-written .tmp file) is a
// leftover.
func RunDirIdle(rel string, isDir bool) bool {
	switch rel {
	case ".", "crib.sock", "cgroups.json", "pods", "storage", "checkpoints":
		// checkpoints: the folder of checkpoints being written (made at
		// the first); a work directory in it is a leak.
		return true
	}
	parts := strings.Split(rel, "/")
	if parts[0] == "runtimes" {
		// The runtime handlers' state roots (runtime.handlers.*), made
		// at cribd's start; a container's state in one is a leak.
		return rel == "runtimes" || (len(parts) == 2 && isDir)
	}
	if parts[0] != "storage" {
		return false
	}
	base := parts[len(parts)-1]
	if strings.HasPrefix(base, ".tmp") {
		return false // an atomic write a crash cut short
	}
	if len(parts) == 2 && isDir {
		// overlay, overlay-containers, overlay-layers, overlay-locks,
		// userns-rootfs: the directories themselves.
		return true
	}
	if strings.HasSuffix(base, ".lock") || base == "mountpoints.json" {
		return true
	}
	// The overlay driver's cached feature probes: overlay-true,
	// native-diff()-false, ...
	return len(parts) == 3 && parts[1] == "overlay" && !isDir &&
		(strings.HasSuffix(base, "-true") || strings.HasSuffix(base, "-false"))
}

// storeSnapshot adds the store's leftovers and the files under run_dir to
// s.
func (h *Cribd) storeSnapshot(add func(kind, key, desc string)) {
	roots := []string{filepath.Join(h.RootDir, "storage"), filepath.Join(h.RunDir, "storage")}
	ctrs, err1 := readStoreItems(roots, "*-containers/containers.json", "*-containers/volatile-containers.json")
	layers, err2 := readStoreItems(roots, "*-layers/layers.json", "*-layers/volatile-layers.json")
	images, err3 := readStoreItems(roots, "*-images/images.json")
	if err := errors.Join(err1, err2, err3); err != nil {
		add(KindStoreLayer, "unreadable", "the store's records cannot be read: "+err.Error())
	} else {
		c, l := StoreLeftovers(ctrs, layers, images)
		for k, d := range c {
			add(KindStoreContainer, k, d)
		}
		for k, d := range l {
			add(KindStoreLayer, k, d)
		}
	}
	_ = filepath.WalkDir(h.RunDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(h.RunDir, path)
		if RunDirIdle(rel, d.IsDir()) {
			return nil
		}
		add(KindRunFile, rel, "run_dir file "+path)
		if d.IsDir() {
			return filepath.SkipDir // one line for a whole tree
		}
		return nil
	})
}
