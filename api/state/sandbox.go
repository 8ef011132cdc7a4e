// Package state holds crib's on-disk records and the atomic file writes that
// keep them whole across crashes. Records are versioned JSON.
package state

import "time"

// SandboxVersion is the version of the Sandbox record written by this build.
const SandboxVersion = 1

// The files crib writes for a pod into its directory (<root>/pods/<id>),
// which its
// containers bind mount at /etc/hostname, /etc/resolv.conf and /etc/hosts.
const (
	HostnameFile   = "hostname"
	ResolvConfFile = "resolv.conf"
	HostsFile      = "hosts"
)

// SandboxPhase is the lifecycle phase recorded for a pod. The CRI state
// (READY/NOTREADY) is derived from it together with the pause process's
// liveness:
//
//	Creating --(all set up)--> Ready --(StopPodSandbox)--> Stopped
//	    \---(crash mid-create: seen at recovery)--------------^
type SandboxPhase string

// Sandbox phases.
const (
	// PhaseCreating: resources are being acquired; a record still in this
	// phase after a restart belongs to a create that died and reads NOTREADY.
	PhaseCreating SandboxPhase = "creating"
	// PhaseReady: every resource is up; READY while the pause process and
	// the shim live (see Sandbox.ShimDied).
	PhaseReady SandboxPhase = "ready"
	// PhaseStopped: StopPodSandbox finished; only the record and files remain.
	PhaseStopped SandboxPhase = "stopped"
)

// NamespaceMode mirrors the CRI NamespaceMode for one namespace.
type NamespaceMode string

// Namespace modes.
const (
	NamespacePod       NamespaceMode = "pod"
	NamespaceContainer NamespaceMode = "container"
	NamespaceNode      NamespaceMode = "node"
	NamespaceTarget    NamespaceMode = "target"
)

// PodMetadata identifies a pod as kubelet names it.
type PodMetadata struct {
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Attempt   uint32 `json:"attempt"`
}

// DNS is the pod's resolver configuration.
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// PortMapping is one requested host port.
type PortMapping struct {
	Protocol      string `json:"protocol"`
	ContainerPort int32  `json:"containerPort"`
	HostPort      int32  `json:"hostPort"`
	HostIP        string `json:"hostIP,omitempty"`
}

// IDMapping maps Size IDs starting at ContainerID inside a user namespace
// to those starting at HostID outside it.
type IDMapping struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

// HostID is the host ID of id inside a user namespace of maps; ok is false
// when no mapping covers id.
func HostID(maps []IDMapping, id uint32) (host uint32, ok bool) {
	for _, m := range maps {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}

// Sandbox is one pod's persisted record, at <root>/pods/<id>/sandbox.json.
type Sandbox struct {
	Version        int               `json:"version"`
	ID             string            `json:"id"`
	Metadata       PodMetadata       `json:"metadata"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	CreatedAt      time.Time         `json:"createdAt"`
	RuntimeHandler string            `json:"runtimeHandler,omitempty"`
	Hostname       string            `json:"hostname,omitempty"`
	LogDirectory   string            `json:"logDirectory,omitempty"`
	DNS            DNS               `json:"dns"`
	PortMappings   []PortMapping     `json:"portMappings,omitempty"`
	Sysctls        map[string]string `json:"sysctls,omitempty"`
	CgroupParent   string            `json:"cgroupParent"`
	// AppArmorProfile is the pause process's AppArmor profile; empty
	// means unconfined.
	AppArmorProfile string `json:"appArmorProfile,omitempty"`

	NetworkMode NamespaceMode `json:"networkMode"`
	PIDMode     NamespaceMode `json:"pidMode"`
	IPCMode     NamespaceMode `json:"ipcMode"`

	Phase SandboxPhase `json:"phase"`
	// NetNSPath is the pinned network namespace; empty for host network.
	NetNSPath string `json:"netnsPath,omitempty"`
	// IPCPath and UTSPath are the pinned IPC and UTS namespaces (empty when the host's).
	IPCPath string `json:"ipcPath,omitempty"`
	UTSPath string `json:"utsPath,omitempty"`
	// UserNSPath is the pinned user namespace that owns the pod's other
	// namespaces; empty when the pod uses the host's (NamespaceMode NODE).
	UserNSPath string `json:"userNSPath,omitempty"`
	// UIDMappings and GIDMappings are the pod's user namespace mappings,
	// set exactly when UserNSPath is.
	UIDMappings []IDMapping `json:"uidMappings,omitempty"`
	GIDMappings []IDMapping `json:"gidMappings,omitempty"`
	// ShmPath is the pod's /dev/shm mount; empty when the host's IPC is used.
	ShmPath string `json:"shmPath,omitempty"`
	// IPs are the pod's addresses, IPv4 first.
	IPs []string `json:"ips,omitempty"`
	// NetworkAttached is true between a CNI ADD and the matching DEL.
	NetworkAttached bool `json:"networkAttached"`
	// CNIResult is the plugin's result, for verbose status.
	CNIResult any `json:"cniResult,omitempty"`
	// CgroupDriver is the cgroup driver the pod was made under: cgroupfs
	// ("" in records older than the field) or systemd.
	CgroupDriver string `json:"cgroupDriver,omitempty"`
	// CgroupsPath is the pause container's OCI cgroupsPath: a path below
	// each hierarchy's root under cgroupfs, "<slice>:crib:<id>" under
	// systemd (internal/cgroup.Dir gives its directory under either).
	CgroupsPath string `json:"cgroupsPath"`
	// PausePID and PauseStartTime identify the pause process; the start time
	// (field 22 of /proc/<pid>/stat) guards against PID reuse.
	PausePID       int    `json:"pausePid,omitempty"`
	PauseStartTime uint64 `json:"pauseStartTime,omitempty"`
	// PauseFromImage is set when pause runs from runtime.pause_image, whose
	// rootfs (a store container named by the pod ID) goes with the pod.
	// It is set in the first record Run writes, before the rootfs exists.
	PauseFromImage bool `json:"pauseFromImage,omitempty"`
	// ShimDir is the pod's run directory where crib-shim listens.
	ShimDir string `json:"shimDir"`
	// ShimDied is when cribd found the pod's shim dead while the pod was
	// ready. From then on the pod reads NOTREADY: nothing records its
	// containers' exits or writes their logs, so cribd killed them and
	// kubelet recreates the pod.
	ShimDied *time.Time `json:"shimDied,omitempty"`
}
