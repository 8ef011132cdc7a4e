package state

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

// ContainerVersion is the version of the Container record written by this build.
const ContainerVersion = 1

// Mount is one bind mount as the CRI reports it back.
type Mount struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	Readonly      bool   `json:"readonly,omitempty"`
	Propagation   int32  `json:"propagation,omitempty"`
	// Image and ImageSubPath are an image volume's image (as requested)
	// and sub path.
	Image        string `json:"image,omitempty"`
	ImageSubPath string `json:"imageSubPath,omitempty"`
}

// ImageMount is an image mounted read-only for a container's image volume
// (CRI Mount.image): a store container of its own, named
// ImageMountName(container ID, index). It is recorded before it is
// mounted, so a crash leaves no mount that no record names; removing an
// ID the store no longer has is done.
type ImageMount struct {
	// ID is the store container's ID.
	ID string `json:"id"`
	// Index is the mount's index in the request's mounts.
	Index int `json:"index"`
	// Image is the image as requested; ImageID what it resolved to.
	Image   string `json:"image"`
	ImageID string `json:"imageId"`
}

// ImageMountName is the store name of container id's image mount of
// mounts[index]: start-up recognises it as crib's, owned by the record of
// container id.
func ImageMountName(id string, index int) string { return fmt.Sprintf("imagevol-%s-%d", id, index) }

// ParseImageMountName returns the container ID and mount index an
// ImageMountName names; ok is false for any other name.
func ParseImageMountName(name string) (id string, index int, ok bool) {
	rest, found := strings.CutPrefix(name, "imagevol-")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", 0, false
	}
	index, err := strconv.Atoi(rest[i+1:])
	if err != nil || index < 0 || ImageMountName(rest[:i], index) != name {
		return "", 0, false
	}
	return rest[:i], index, true
}

// User is a container process's identity: uid, primary gid and the
// supplementary groups (the primary one among them).
type User struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
}

// Resources are a container's CPU and memory settings as applied to its
// cgroup (zero: not set).
type Resources struct {
	CPUPeriod       uint64            `json:"cpuPeriod,omitempty"`
	CPUQuota        int64             `json:"cpuQuota,omitempty"`
	CPUShares       uint64            `json:"cpuShares,omitempty"`
	CpusetCpus      string            `json:"cpusetCpus,omitempty"`
	CpusetMems      string            `json:"cpusetMems,omitempty"`
	MemoryLimit     int64             `json:"memoryLimit,omitempty"`
	MemorySwapLimit int64             `json:"memorySwapLimit,omitempty"`
	OOMScoreAdj     int               `json:"oomScoreAdj,omitempty"`
	Unified         map[string]string `json:"unified,omitempty"`
}

// Container is one app container's record, at
// <root>/pods/<pod id>/containers/<id>.json. Its running state (started,
// exited, exit code, OOM) is not kept here: the pod's shim writes it to
// <run>/pods/<pod id>/containers/<id>/state.json, and cribd reads it from
// there, so that exits while cribd is down are seen after a restart.
type Container struct {
	Version     int               `json:"version"`
	ID          string            `json:"id"`
	PodID       string            `json:"podId"`
	Name        string            `json:"name"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
	// Image is the image as requested; ImageRef what it resolved to (a
	// repo digest when known); ImageID the config digest.
	Image    string `json:"image"`
	ImageRef string `json:"imageRef"`
	ImageID  string `json:"imageId"`
	// LogPath is the absolute CRI log path ("" for none).
	LogPath string  `json:"logPath,omitempty"`
	Mounts  []Mount `json:"mounts,omitempty"`
	// Rootfs is the mounted root filesystem of the writable layer.
	Rootfs string `json:"rootfs"`
	// ImageMounts are the images mounted for its image volumes.
	ImageMounts []ImageMount `json:"imageMounts,omitempty"`
	// CgroupsPath is the container's OCI cgroupsPath (see Sandbox.CgroupsPath).
	CgroupsPath string `json:"cgroupsPath"`
	// User is the identity the container's processes run as, resolved at
	// create (ContainerStatus reports it).
	User *User `json:"user,omitempty"`
	// Resources are the CPU and memory settings applied at create and by
	// each UpdateContainerResources since (ContainerStatus reports them).
	Resources *Resources `json:"resources,omitempty"`
	// StopSignal is the signal StopContainer sends first.
	StopSignal int `json:"stopSignal"`
	// Pid and PidStartTime identify the init process.
	Pid          int    `json:"pid"`
	PidStartTime uint64 `json:"pidStartTime"`
	// LastState is the shim's last word on the container, saved when its
	// pod stops (the shim and its state files go with the pod).
	LastState *shimapi.State `json:"lastState,omitempty"`
	// Creating is set while CreateContainer runs: the record is written
	// before the writable layer is made and cleared once the shim holds
	// the container, so a crash mid-create leaves a record that cribd's
	// start undoes (nothing the CRI ever named is lost).
	Creating bool `json:"creating,omitempty"`
	// Removing is set once RemoveContainer began, so a crash mid-removal
	// is finished at the next Remove, or at start, instead of reviving
	// the container.
	Removing bool `json:"removing,omitempty"`
}
