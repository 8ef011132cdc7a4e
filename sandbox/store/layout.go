package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crib-runtime/crib/api/state"
)

// The on-disk layout, shared by pods and containers:
//
//	<root>/pods/<pod ID>/sandbox.json                   the pod's record
//	<root>/pods/<pod ID>/{hostname,resolv.conf,hosts}   its files
//	<root>/pods/<pod ID>/containers/<ID>.json           a container's record
//	<root>/pods/<pod ID>/containers/<ID>.spec           its OCI spec
//	<root>/pods/<pod ID>/containers/<ID>.volumes/       its image volumes
//	<run>/pods/<pod ID>/                                the pod's run dir (shim)

// PodsDir is the directory of pods under base (the root or the run
// directory).
func PodsDir(base string) string { return filepath.Join(base, "pods") }

// PodDir is pod id's directory under base: its record and files under the
// root directory, its shim's run directory under the run directory.
func PodDir(base, id string) string { return filepath.Join(PodsDir(base), id) }

// RecordPath is where pod id's record is kept under root.
func RecordPath(root, id string) string { return filepath.Join(PodDir(root, id), "sandbox.json") }

// SavePod writes rec under root.
func SavePod(root string, rec *state.Sandbox) error {
	rec.Version = state.SandboxVersion
	return state.WriteJSON(RecordPath(root, rec.ID), rec)
}

// ContainerDir holds the container records of pod podID under root.
func ContainerDir(root, podID string) string {
	return filepath.Join(PodDir(root, podID), "containers")
}

// ContainerRecordPath is where container id's record is kept.
func ContainerRecordPath(root, podID, id string) string {
	return filepath.Join(ContainerDir(root, podID), id+".json")
}

// SpecPath is where container id's OCI spec is kept, for ContainerStatus's
// verbose info. (Not ".json": that suffix marks container records.)
func SpecPath(root, podID, id string) string {
	return filepath.Join(ContainerDir(root, podID), id+".spec")
}

// VolumeDir holds container id's image volumes.
func VolumeDir(root, podID, id string) string {
	return filepath.Join(ContainerDir(root, podID), id+".volumes")
}

// SaveContainer writes rec under root.
func SaveContainer(root string, rec *state.Container) error {
	rec.Version = state.ContainerVersion
	return state.WriteJSON(ContainerRecordPath(root, rec.PodID, rec.ID), rec)
}

// RemoveContainerRecord deletes a container's record; one already gone is
// not an error.
func RemoveContainerRecord(root, podID, id string) error {
	if err := os.Remove(ContainerRecordPath(root, podID, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove container %s record: %w", id, err)
	}
	return nil
}

// LabelsMatch reports whether have holds every label of want with an
// equal value.
func LabelsMatch(have, want map[string]string) bool {
	for k, w := range want {
		if g, ok := have[k]; !ok || g != w {
			return false
		}
	}
	return true
}
