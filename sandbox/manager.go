// Package sandbox runs pods: a set of pinned namespaces (network, IPC, UTS)
// held by a pause process that the pod's crib-shim starts through
// libcontainer, networked through CNI. It owns the pod records on disk and
// their lifecycle:
//
//	Run:    reserve name -> record(creating) -> run dir, files, /dev/shm
//	        -> pin namespaces -> [CNI ADD || shim + pause] -> record(ready)
//	Stop:   pause killed, shim gone -> CNI DEL -> unpin -> record(stopped)
//	Remove: Stop -> containers -> run dir, files -> record -> name released
//
// Every step of Run registers its undo, so a failed Run leaves nothing behind.
// A cribd killed between two steps leaves a record that the next Stop or
// Remove finishes, or leftovers start-up removes (reconcile.go).
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
	"github.com/opencontainers/cgroups"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/cleanup"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/network"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/ocispec"
	"github.com/crib-runtime/crib/sandbox/shimclient"
	"github.com/crib-runtime/crib/sandbox/store"
)

// Network is what the manager needs from the CNI network manager.
type Network interface {
	Setup(ctx context.Context, req network.SetupRequest) (*network.Result, error)
	Teardown(ctx context.Context, req network.SetupRequest) error
}

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
	// Log is the manager's logger.
	Log logrus.FieldLogger
}

// withDefaults fills in the seams left nil with the real ones.
func (o Options) withDefaults() Options {
	if o.Pinner == nil {
		o.Pinner = hostPinner{}
	}
	if o.Shims == nil {
		o.Shims = shimclient.NewLauncher(o.ShimBinary, o.LogLevel)
	}
	return o
}

// Manager runs pod sandboxes. It is safe for concurrent use.
type Manager struct {
	opts Options
	// ids makes pod and container IDs: newID, but in tests.
	ids         func() (string, error)
	pauseRootfs string
	// oomScoreAdj is cribd's own oom_score_adj: the floor for every pod,
	// since without CAP_SYS_RESOURCE a lower value cannot be written.
	oomScoreAdj int
	// hugetlb is whether the node mounts a hugetlb cgroup controller.
	hugetlb bool
	// cgroup2 is whether the node runs the unified cgroup hierarchy alone
	// (cgroup v2): containers then get cgroup namespaces.
	cgroup2 bool
	// hierarchies are the cgroup mount points; parents makes and removes
	// pods' cgroup parents.
	hierarchies []string
	parents     *cgroup.Parents

	// Lock order is pod.mu, then ctr.mu; the store's locks come last.
	pods       *store.Index[*pod]
	names      *store.Registrar // reserved pod name key -> ID
	containers *store.Index[*ctr]
	ctrNames   *store.Registrar // reserved container name key -> ID

	cpu     cpuSamples
	hub     *events.Hub
	watcher *fsnotify.Watcher // containers' state files
}

// pod is one sandbox in memory. mu serialises lifecycle operations on it;
// rec is only changed under mu and written to disk before it changes.
// Lifecycle operations hold mu for as long as they take (a CreateContainer
// of seconds on a slow node): readers that only report, such as
// ListPodSandbox and PodSandboxStatus, read pub instead and never wait.
type pod struct {
	mu   sync.Mutex
	rec  state.Sandbox
	shim shimclient.Conn
	// watch follows the shim's exit while the pod is ready (shimdeath.go).
	watch *shimWatch
	// pub is a copy of rec as of its last change (setRec).
	pub atomic.Pointer[state.Sandbox]
}

// newPod is a pod holding rec.
func newPod(rec state.Sandbox) *pod {
	p := &pod{}
	p.setRec(rec)
	return p
}

// setRec replaces the pod's record and publishes a copy for readers that
// do not take mu. The caller holds mu (or owns p alone), and has saved rec.
// A record's maps and slices are replaced, never changed in place, so a
// shallow copy is a snapshot.
func (p *pod) setRec(rec state.Sandbox) {
	p.rec = rec
	p.pub.Store(&rec)
}

// published is the pod's record as of its last setRec.
func (p *pod) published() state.Sandbox { return *p.pub.Load() }

// New prepares the directories and the pause rootfs, and loads the records
// left by a previous cribd (see Recover).
func New(opts Options) (*Manager, error) {
	for _, d := range []string{podsDir(opts.RootDir), podsDir(opts.RunDir), opts.NetNSDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	adj, err := procfs.SelfOOMScoreAdj()
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	m := &Manager{
		opts:        opts,
		ids:         newID,
		oomScoreAdj: adj,
		pods:        newPodIndex(),
		names:       store.NewRegistrar(),
		containers:  newContainerIndex(),
		ctrNames:    store.NewRegistrar(),
		cpu:         cpuSamples{last: map[string]cpuSample{}},
	}
	if m.hugetlb, err = cgroup.ControllerMounted("hugetlb"); err != nil {
		return nil, err
	}
	m.cgroup2 = cgroups.IsCgroup2UnifiedMode()
	if m.hierarchies, err = cgroup.Hierarchies(); err != nil {
		return nil, err
	}
	m.parents, err = cgroup.NewParents(cgroup.ParentsOptions{
		File:        filepath.Join(opts.RunDir, "cgroups.json"),
		Hierarchies: m.hierarchies,
		Units:       opts.Units,
	})
	if err != nil {
		return nil, err
	}
	if m.pauseRootfs, err = preparePauseRootfs(opts.RootDir, opts.PauseBinary); err != nil {
		return nil, err
	}
	m.hub = events.NewHub(opts.Log)
	if m.watcher, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("container events: %w", err)
	}
	if err := m.recover(); err != nil {
		m.watcher.Close()
		return nil, err
	}
	m.reconcile()
	for _, c := range m.containers.List() {
		m.watchContainer(m.containerView(c))
	}
	m.sweepCgroupParents()
	m.recoverShims()
	go m.watchExits()
	return m, nil
}

// sweepCgroupParents counts the pods that are not stopped as users of their
// cgroup parents and removes the parents crib made that no pod uses: what
// a cribd killed between a pod's Stop and its parents' removal left.
func (m *Manager) sweepCgroupParents() {
	for _, p := range m.pods.List() {
		if p.rec.Phase == state.PhaseStopped {
			continue
		}
		if err := m.parents.Use(p.rec.ID, cgroup.RecordDriver(p.rec.CgroupDriver), p.rec.CgroupParent); err != nil {
			m.opts.Log.WithField("pod", p.rec.ID).WithError(err).Warn("recover: pod cgroup parent")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanup.Timeout)
	defer cancel()
	if err := m.parents.Sweep(ctx); err != nil {
		m.opts.Log.WithError(err).Warn("removing cgroup parents no pod uses")
	}
}

func podsDir(base string) string { return filepath.Join(base, "pods") }

func (m *Manager) recordPath(id string) string {
	return filepath.Join(podsDir(m.opts.RootDir), id, "sandbox.json")
}

// save writes rec to disk; the caller holds p.mu and sets p.rec after.
func (m *Manager) save(rec *state.Sandbox) error {
	rec.Version = state.SandboxVersion
	return state.WriteJSON(m.recordPath(rec.ID), rec)
}

// recover loads every pod record on disk. Pods keep running while cribd is
// down; their shims are reconnected on first use. A record left in the
// creating phase belongs to a Run that died with cribd: it reads NOTREADY,
// and kubelet's StopPodSandbox/RemovePodSandbox releases what it holds.
func (m *Manager) recover() error {
	entries, err := os.ReadDir(podsDir(m.opts.RootDir))
	if err != nil {
		return fmt.Errorf("read pod records: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var rec state.Sandbox
		if err := state.ReadJSON(m.recordPath(e.Name()), &rec); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// A Run that died before its first write: nothing to track.
				m.opts.Log.Warnf("recover: pod dir %s has no record; removing it", e.Name())
				_ = os.RemoveAll(filepath.Join(podsDir(m.opts.RootDir), e.Name()))
				continue
			}
			m.opts.Log.WithError(err).Errorf("recover: skipping pod %s", e.Name())
			continue
		}
		m.pods.Add(rec.ID, newPod(rec))
		if err := m.names.Reserve(nameKey(rec.Metadata), rec.ID); err != nil {
			m.opts.Log.WithError(err).Warnf("recover: pod %s", rec.ID)
		}
		m.recoverContainers(rec.ID)
		m.opts.Log.WithField("pod", rec.ID).Debugf("recovered pod %s/%s in phase %s, ready=%v",
			rec.Metadata.Namespace, rec.Metadata.Name, rec.Phase, m.ready(&rec))
	}
	return nil
}

// recoverContainers loads the container records of pod id.
func (m *Manager) recoverContainers(id string) {
	entries, err := os.ReadDir(m.containerDir(id))
	if err != nil {
		return // no containers
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var rec state.Container
		if err := state.ReadJSON(filepath.Join(m.containerDir(id), e.Name()), &rec); err != nil {
			m.opts.Log.WithError(err).Errorf("recover: skipping container record %s", e.Name())
			continue
		}
		m.containers.Add(rec.ID, newCtr(rec))
		if err := m.ctrNames.Reserve(containerKey(&rec), rec.ID); err != nil {
			m.opts.Log.WithError(err).Warnf("recover: container %s", rec.ID)
		}
	}
}

// nameKey is the identity kubelet gives a pod attempt.
func nameKey(md state.PodMetadata) string {
	return strings.Join([]string{md.Name, md.Namespace, md.UID, fmt.Sprint(md.Attempt)}, "_")
}

// newID returns 64 lower-case hex characters.
func newID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate pod ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// newPodIndex is the index of pods, named in errors as the CRI names them.
func newPodIndex() *store.Index[*pod] { return store.NewIndex[*pod]("pod sandbox", "pod_sandbox_id") }

// reserve claims md's name for id, or names the pod that holds it.
func (m *Manager) reserve(md state.PodMetadata, id string) error {
	key := nameKey(md)
	var held *store.ReservedError
	if err := m.names.Reserve(key, id); errors.As(err, &held) {
		return errdefs.AlreadyExists("pod sandbox name %q is reserved for pod %s (name, namespace, uid and attempt must be unique)", key, held.ID)
	} else if err != nil {
		return err
	}
	return nil
}

// release frees md's name if pod id holds it.
func (m *Manager) release(md state.PodMetadata, id string) { m.names.Release(nameKey(md), id) }

// lookup finds a pod by full ID or unique ID prefix.
func (m *Manager) lookup(id string) (*pod, error) { return m.pods.Get(id) }

// View is a pod's record plus the state derived from the live system.
type View struct {
	state.Sandbox
	// Ready is true while the pod is set up and its pause process and shim
	// live.
	Ready bool
}

func (m *Manager) ready(rec *state.Sandbox) bool {
	return rec.Phase == state.PhaseReady && rec.ShimDied == nil && procfs.Alive(rec.PausePID, rec.PauseStartTime)
}

func (m *Manager) view(p *pod) View {
	rec := p.published()
	return View{Sandbox: rec, Ready: m.ready(&rec)}
}

// Get returns one pod by ID or unique ID prefix.
func (m *Manager) Get(id string) (View, error) {
	p, err := m.lookup(id)
	if err != nil {
		return View{}, err
	}
	return m.view(p), nil
}

// List returns the pods matching f, oldest first.
func (m *Manager) List(f Filter) []View {
	pods := m.pods.List()
	out := make([]View, 0, len(pods))
	for _, p := range pods {
		if v := m.view(p); f.Match(v) {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// Filter selects pods in List. Zero fields match everything.
type Filter struct {
	// IDPrefix matches a full ID or an ID prefix.
	IDPrefix string
	// Ready, when set, matches pods whose readiness equals *Ready.
	Ready *bool
	// Labels must all be present with equal values.
	Labels map[string]string
}

// Match reports whether v passes the filter.
func (f Filter) Match(v View) bool {
	if f.IDPrefix != "" && !strings.HasPrefix(v.ID, f.IDPrefix) {
		return false
	}
	if f.Ready != nil && *f.Ready != v.Ready {
		return false
	}
	return labelsMatch(v.Labels, f.Labels)
}

// Close drops the connections to shims and stops watching containers;
// pods keep running.
func (m *Manager) Close() {
	m.watcher.Close()
	for _, p := range m.pods.List() {
		p.mu.Lock()
		m.unwatchShim(p)
		if p.shim != nil {
			p.shim.Close()
			p.shim = nil
		}
		p.mu.Unlock()
	}
}
