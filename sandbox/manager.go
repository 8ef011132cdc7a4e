// Package sandbox runs pods and their containers for the CRI server. It
// is a thin facade over two halves:
//
//   - sandbox/pod runs pods: records, Run, Stop, Remove, pause, namespace
//     pins, CNI, the pod's shim and its death;
//   - sandbox/container runs their app containers through the pod's shim:
//     records, create, start, stop, remove, exec, attach, stats, exits.
//
// Manager is both (server/ calls one type); New wires them together and
// runs start-up recovery (reconcile.go). Below both lie sandbox/store (the
// indexes, names and on-disk layout), sandbox/shimclient (the shim
// connection), sandbox/events (the subscriber hub), sandbox/ocispec and
// sandbox/cgstats. Neither half imports the other: each declares what it
// needs of the other (pod.Containers, container.Pods and container.Pod),
// and New adapts one to the other (podLocker, podContainers).
//
// Lock order is a pod, then a container, then the store's locks.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/sandbox/container"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/ocispec"
	"github.com/crib-runtime/crib/sandbox/pod"
	"github.com/crib-runtime/crib/sandbox/shimclient"
	"github.com/crib-runtime/crib/sandbox/store"
)

// Network is what the manager needs from the CNI network manager.
type Network = pod.Network

// Images is what the manager needs from the image service: pods' pause
// images, containers' root filesystems, and start-up's sweep of writable
// layers no record owns.
type Images interface {
	Status(ref string) (*image.Image, error)
	Pull(ctx context.Context, name string, auth image.Auth) (image.ID, error)
	CreateRootfs(id string, imageID image.ID, name string, ids image.IDMappings) (string, error)
	MountImage(id string, imageID image.ID, name string, ids image.IDMappings) (string, error)
	RemoveRootfs(id string) error
	WriteRootfsDiff(id string, w io.Writer) error
	Rootfses() ([]image.Rootfs, error)
}

// Pinner makes and removes the mounts a pod holds on the host (see
// pod.Pinner).
type Pinner = pod.Pinner

// ShimConn is what the sandbox manager asks of a pod's crib-shim.
type ShimConn = shimclient.Conn

// ShimLauncher starts and reaches pods' crib-shims. The default is
// sandbox/shimclient's, running Options.ShimBinary; unit tests give a fake.
type ShimLauncher = shimclient.Launcher

// Options configures a Manager.
type Options struct {
	// RootDir holds persistent pod records and files (<root>/pods/<id>).
	RootDir string
	// RunDir holds per-boot state: shim dirs and IPC/UTS pins (<run>/pods/<id>).
	RunDir string
	// NetNSDir is where network namespaces are pinned (crib-<id>).
	NetNSDir string
	// CgroupDriver maps pods and containers to cgroups: cgroupfs or
	// systemd (then Units must be set).
	CgroupDriver cgroup.Driver
	// CgroupParent is used when a pod names no cgroup parent.
	CgroupParent string
	// Units is systemd over D-Bus: it stops the scopes and slices of pods
	// whose shim is gone. Nil without the systemd driver.
	Units cgroup.Units
	// ShimBinary and PauseBinary are the executables crib ships.
	ShimBinary  string
	PauseBinary string
	// PauseImage, if set, is the image pause runs from instead of PauseBinary.
	PauseImage string
	// ShmSize is the size of each pod's /dev/shm in bytes.
	ShmSize int64
	// PodDefaultSysctls turns on DefaultPodSysctls for pods with their own
	// network namespace (config runtime.pod_default_sysctls).
	PodDefaultSysctls bool
	// AppArmor is the node's AppArmor, for containers' profiles; nil is a
	// node without it.
	AppArmor ocispec.AppArmor
	// CDI resolves containers' CDI devices; nil is CDI turned off.
	CDI ocispec.CDI
	// CDIPodAnnotations also takes CDI devices from pods' cdi.k8s.io/
	// annotations (config cdi.pod_annotations).
	CDIPodAnnotations bool
	// LogLevel is passed to each shim.
	LogLevel string
	// Network sets up and tears down pod networking.
	Network Network
	// Images resolves images and makes containers' root filesystems.
	Images Images
	// Pinner pins pods' namespaces and mounts their /dev/shm; nil is the
	// host's (internal/nsfs, mount(2)).
	Pinner Pinner
	// Shims launches and reaches pods' crib-shims; nil is
	// sandbox/shimclient's, running ShimBinary with LogLevel.
	Shims ShimLauncher
	// Handlers are the runtime handlers besides the default one, by name:
	// their pods' app containers run through an external OCI runtime.
	Handlers map[string]Handler
	// Adjuster, if set, may change containers' OCI specs before they are
	// created (NRI); nil is none.
	Adjuster SpecAdjuster
	// Log is the manager's logger.
	Log logrus.FieldLogger
}

// Handler is a runtime handler besides the default one (see
// container.Handler).
type Handler = container.Handler

// SpecAdjuster changes containers' OCI specs before they are created (see
// container.SpecAdjuster).
type SpecAdjuster = container.SpecAdjuster

// withDefaults fills in the seams left nil with the real ones.
func (o Options) withDefaults() Options {
	if o.Pinner == nil {
		o.Pinner = pod.HostPinner()
	}
	if o.Shims == nil {
		o.Shims = shimclient.NewLauncher(o.ShimBinary, o.LogLevel)
	}
	return o
}

// DefaultPodSysctls are the sysctls Options.PodDefaultSysctls turns on.
var DefaultPodSysctls = pod.DefaultPodSysctls

// Manager runs pod sandboxes and their containers. It is safe for
// concurrent use. Its methods are the two halves'; Close and
// SubscribeEvents are its own.
type Manager struct {
	*pod.Pods
	*container.Manager

	opts Options
	hub  *events.Hub
}

// node is what New finds on the node, for both halves.
type node struct {
	// ids makes pod and container IDs: newID, but in tests.
	ids func() (string, error)
	// oomScoreAdj is cribd's own oom_score_adj: the floor for every pod
	// and container, since without CAP_SYS_RESOURCE a lower value cannot
	// be written.
	oomScoreAdj int
	// hugetlb is whether the node mounts a hugetlb cgroup controller;
	// cgroup2 whether it runs the unified hierarchy alone.
	hugetlb, cgroup2 bool
	// hierarchies are the cgroup mount points; parents makes and removes
	// pods' cgroup parents.
	hierarchies []string
	parents     *cgroup.Parents
	pauseRootfs string
}

// New prepares the directories and the pause rootfs, loads the records
// left by a previous cribd, and runs start-up recovery (reconcile.go).
func New(opts Options) (*Manager, error) {
	for _, d := range []string{store.PodsDir(opts.RootDir), store.PodsDir(opts.RunDir), opts.NetNSDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	adj, err := procfs.SelfOOMScoreAdj()
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	n := node{ids: newID, oomScoreAdj: adj}
	if n.hugetlb, err = cgroup.ControllerMounted("hugetlb"); err != nil {
		return nil, err
	}
	n.cgroup2 = cgroups.IsCgroup2UnifiedMode()
	if n.hierarchies, err = cgroup.Hierarchies(); err != nil {
		return nil, err
	}
	n.parents, err = cgroup.NewParents(cgroup.ParentsOptions{
		File:        filepath.Join(opts.RunDir, "cgroups.json"),
		Hierarchies: n.hierarchies,
		Units:       opts.Units,
	})
	if err != nil {
		return nil, err
	}
	if n.pauseRootfs, err = pod.PreparePauseRootfs(opts.RootDir, opts.PauseBinary); err != nil {
		return nil, err
	}
	m, err := newManager(opts, n)
	if err != nil {
		return nil, err
	}
	if err := m.Pods.Recover(); err != nil {
		m.Manager.Close()
		return nil, err
	}
	m.reconcile()
	m.Manager.WatchAll()
	m.SweepCgroupParents()
	m.RecoverShims()
	go m.Manager.WatchExits()
	return m, nil
}

// newManager wires the two halves together: the pods' containers are the
// container half, which reaches pods through podLocker.
func newManager(opts Options, n node) (*Manager, error) {
	hub := events.NewHub(opts.Log)
	pods := pod.New(pod.Config{
		RootDir: opts.RootDir, RunDir: opts.RunDir, NetNSDir: opts.NetNSDir,
		CgroupDriver: opts.CgroupDriver, CgroupParent: opts.CgroupParent, Units: opts.Units,
		PauseBinary: opts.PauseBinary, PauseImage: opts.PauseImage, ShmSize: opts.ShmSize,
		PodDefaultSysctls: opts.PodDefaultSysctls, Network: opts.Network, Images: opts.Images,
		Pinner: opts.Pinner, Shims: opts.Shims, Log: opts.Log,
		IDs: n.ids, OOMScoreAdj: n.oomScoreAdj, Hierarchies: n.hierarchies, Parents: n.parents,
		PauseRootfs: n.pauseRootfs, Hub: hub,
	})
	ctrs, err := container.New(container.Config{
		RootDir: opts.RootDir, RunDir: opts.RunDir, Units: opts.Units, AppArmor: opts.AppArmor,
		CDI: opts.CDI, CDIPodAnnotations: opts.CDIPodAnnotations,
		Images: opts.Images, Log: opts.Log,
		IDs: n.ids, OOMScoreAdj: n.oomScoreAdj, Hugetlb: n.hugetlb, Cgroup2: n.cgroup2,
		Hierarchies: n.hierarchies, Hub: hub, Handlers: opts.Handlers, Adjuster: opts.Adjuster,
	}, podLocker{pods})
	if err != nil {
		return nil, err
	}
	pods.SetContainers(podContainers{ctrs})
	return &Manager{Pods: pods, Manager: ctrs, opts: opts, hub: hub}, nil
}

// podLocker is *pod.Pods as the container half sees it: Lock returns the
// container's own Pod interface (a nil one on error, never one holding a
// nil *pod.Locked).
type podLocker struct{ pods *pod.Pods }

func (l podLocker) Lock(id string) (container.Pod, error) {
	p, err := l.pods.Lock(id)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// podContainers is *container.Manager as the pod half sees it: the same
// methods, given the pod as the *pod.Locked it holds.
type podContainers struct{ c *container.Manager }

func (a podContainers) Recover(podID string) { a.c.Recover(podID) }

func (a podContainers) StopAll(ctx context.Context, p *pod.Locked) error { return a.c.StopAll(ctx, p) }

func (a podContainers) RemoveAll(ctx context.Context, p *pod.Locked) error {
	return a.c.RemoveAll(ctx, p)
}

func (a podContainers) ShimDied(ctx context.Context, p *pod.Locked, why string, at time.Time) []string {
	return a.c.ShimDied(ctx, p, why, at)
}

// Close drops the connections to shims and stops watching containers;
// pods keep running.
func (m *Manager) Close() {
	m.Manager.Close()
	m.Pods.Close()
}

// SubscribeEvents returns a channel of container events and a function
// that ends the subscription.
func (m *Manager) SubscribeEvents() (<-chan Event, func()) { return m.hub.Subscribe() }

// newID returns 64 lower-case hex characters.
func newID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate pod ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// UserNamespacesSupported is pod.UserNamespacesSupported.
func UserNamespacesSupported(rootDir, runDir string, holder []string) error {
	return pod.UserNamespacesSupported(rootDir, runDir, holder)
}

// RecursiveReadOnlySupported is pod.RecursiveReadOnlySupported.
func RecursiveReadOnlySupported() bool { return pod.RecursiveReadOnlySupported() }
