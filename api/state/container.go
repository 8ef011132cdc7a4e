package state

import (
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
