// Package pod runs pods: a set of pinned namespaces (network, IPC, UTS)
// held by a pause process that the pod's crib-shim starts through
// libcontainer, networked through CNI. It owns the pod records on disk and
// their lifecycle:
//
//	Run:    reserve name -> record(creating) -> run dir, files, /dev/shm
//	        -> pin namespaces -> [CNI ADD || shim + pause] -> record(ready)
//	Stop:   containers stopped -> pause killed, shim gone -> CNI DEL
//	        -> unpin -> record(stopped)
//	Remove: Stop -> containers removed -> run dir, files -> record
//	        -> name released
//
// Every step of Run registers its undo, so a failed Run leaves nothing behind.
// A cribd killed between two steps leaves a record that the next Stop or
// Remove finishes, or leftovers start-up removes (reconcile.go).
//
// Pods know their containers only through the Containers interface, which
// sandbox/container implements; the container side reaches a pod through
// Lock, under the pod's lock. Lock order is a pod, then its containers,
// then the store's locks.
package pod

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/cleanup"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/network"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/shimclient"
	"github.com/crib-runtime/crib/sandbox/store"
)

// Network is what pods need from the CNI network manager.
type Network interface {
	Setup(ctx context.Context, req network.SetupRequest) (*network.Result, error)
	Teardown(ctx context.Context, req network.SetupRequest) error
}

// Images is what pods need from the image service: a pause container
// from runtime.pause_image.
type Images interface {
	Status(ref string) (*image.Image, error)
	Pull(ctx context.Context, name string, auth image.Auth) (image.ID, error)
	CreateRootfs(id string, imageID image.ID, name string, ids image.IDMappings) (string, error)
	RemoveRootfs(id string) error
}

// Containers is what pods need of their containers (sandbox/container).
// The caller holds the pod's lock, given as p.
type Containers interface {
	// Recover loads the container records of pod podID at start.
	Recover(podID string)
	// StopAll kills the pod's running containers and saves each one's
	// last state: the shim, and the state files it keeps, end with the pod.
	StopAll(ctx context.Context, p *Locked) error
	// RemoveAll removes the pod's containers.
	RemoveAll(ctx context.Context, p *Locked) error
	// ShimDied records the containers of a pod whose shim died as exited
	// and kills what is left of them. It returns the IDs of the
	// containers whose state it changed, for the pod to publish their
	// exits once the pod's own processes are killed too.
	ShimDied(ctx context.Context, p *Locked, why string, at time.Time) []string
}

// Config configures Pods. Options of sandbox.Options that are the pods'
// keep their meaning; the rest is what the facade found on the node.
type Config struct {
	// RootDir holds persistent pod records and files (<root>/pods/<id>).
	RootDir string
	// RunDir holds per-boot state: shim dirs and IPC/UTS pins (<run>/pods/<id>).
	RunDir string
	// NetNSDir is where network namespaces are pinned (crib-<id>).
	NetNSDir string
	// CgroupDriver and CgroupParent: see sandbox.Options.
	CgroupDriver cgroup.Driver
	CgroupParent string
	// Units is systemd over D-Bus, nil without the systemd driver.
	Units cgroup.Units
	// PauseBinary is the executable crib ships; PauseImage, if set, the
	// image pause runs from instead.
	PauseBinary string
	PauseImage  string
	// ShmSize is the size of each pod's /dev/shm in bytes.
	ShmSize int64
	// PodDefaultSysctls turns on DefaultPodSysctls.
	PodDefaultSysctls bool
	Network           Network
	Images            Images
	// Pinner and Shims are the seams of sandbox.Options, filled in.
	Pinner Pinner
	Shims  shimclient.Launcher
	Log    logrus.FieldLogger

	// IDs makes pod IDs.
	IDs func() (string, error)
	// OOMScoreAdj is cribd's own oom_score_adj: the floor for every pod.
	OOMScoreAdj int
	// Hierarchies are the cgroup mount points; Parents makes and removes
	// pods' cgroup parents.
	Hierarchies []string
	Parents     *cgroup.Parents
	// PauseRootfs is the shared pause rootfs (PreparePauseRootfs).
	PauseRootfs string
	// Hub publishes the pods' events.
	Hub *events.Hub
}

// Pods runs pod sandboxes. It is safe for concurrent use.
type Pods struct {
	opts Config
	ctrs Containers
	// ids makes pod IDs: newID, but in tests.
	ids         func() (string, error)
	pauseRootfs string
	oomScoreAdj int
	hierarchies []string
	parents     *cgroup.Parents
	hub         *events.Hub

	// Lock order is pod.mu, then the containers'; the store's locks
	// come last.
	pods  *store.Index[*pod]
	names *store.Registrar // reserved pod name key -> ID
}

// New returns the pods of cfg, none loaded yet (see Recover). SetContainers
// must be called before any other method.
func New(cfg Config) *Pods {
	return &Pods{
		opts: cfg, ids: cfg.IDs, pauseRootfs: cfg.PauseRootfs, oomScoreAdj: cfg.OOMScoreAdj,
		hierarchies: cfg.Hierarchies, parents: cfg.Parents, hub: cfg.Hub,
		pods: newPodIndex(), names: store.NewRegistrar(),
	}
}

// SetContainers gives the pods their containers: the two halves refer to
// each other, so the second is set once both exist.
func (m *Pods) SetContainers(c Containers) { m.ctrs = c }

// PauseRootfs is the shared pause rootfs, for start-up's sweep of
// temporary files.
func (m *Pods) PauseRootfs() string { return m.pauseRootfs }

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

// SweepCgroupParents counts the pods that are not stopped as users of their
// cgroup parents and removes the parents crib made that no pod uses: what
// a cribd killed between a pod's Stop and its parents' removal left.
func (m *Pods) SweepCgroupParents() {
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

func podsDir(base string) string { return store.PodsDir(base) }

func (m *Pods) recordPath(id string) string { return store.RecordPath(m.opts.RootDir, id) }

// save writes rec to disk; the caller holds p.mu and sets p.rec after.
func (m *Pods) save(rec *state.Sandbox) error { return store.SavePod(m.opts.RootDir, rec) }

// Recover loads every pod record, and their containers' on disk. Pods keep running while cribd is
// down; their shims are reconnected on first use. A record left in the
// creating phase belongs to a Run that died with cribd: it reads NOTREADY,
// and kubelet's StopPodSandbox/RemovePodSandbox releases what it holds.
func (m *Pods) Recover() error {
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
		m.ctrs.Recover(rec.ID)
		m.opts.Log.WithField("pod", rec.ID).Debugf("recovered pod %s/%s in phase %s, ready=%v",
			rec.Metadata.Namespace, rec.Metadata.Name, rec.Phase, m.ready(&rec))
	}
	return nil
}

// nameKey is the identity kubelet gives a pod attempt.
func nameKey(md state.PodMetadata) string {
	return strings.Join([]string{md.Name, md.Namespace, md.UID, fmt.Sprint(md.Attempt)}, "_")
}

// newPodIndex is the index of pods, named in errors as the CRI names them.
func newPodIndex() *store.Index[*pod] { return store.NewIndex[*pod]("pod sandbox", "pod_sandbox_id") }

// reserve claims md's name for id, or names the pod that holds it.
func (m *Pods) reserve(md state.PodMetadata, id string) error {
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
func (m *Pods) release(md state.PodMetadata, id string) { m.names.Release(nameKey(md), id) }

// lookup finds a pod by full ID or unique ID prefix.
func (m *Pods) lookup(id string) (*pod, error) { return m.pods.Get(id) }

// View is a pod's record plus the state derived from the live system.
type View struct {
	state.Sandbox
	// Ready is true while the pod is set up and its pause process and shim
	// live.
	Ready bool
}

func (m *Pods) ready(rec *state.Sandbox) bool {
	return rec.Phase == state.PhaseReady && rec.ShimDied == nil && procfs.Alive(rec.PausePID, rec.PauseStartTime)
}

func (m *Pods) view(p *pod) View {
	rec := p.published()
	return View{Sandbox: rec, Ready: m.ready(&rec)}
}

// Get returns one pod by ID or unique ID prefix.
func (m *Pods) Get(id string) (View, error) {
	p, err := m.lookup(id)
	if err != nil {
		return View{}, err
	}
	return m.view(p), nil
}

// List returns the pods matching f, oldest first.
func (m *Pods) List(f Filter) []View {
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
	return store.LabelsMatch(v.Labels, f.Labels)
}

// Close drops the connections to shims; pods keep running.
func (m *Pods) Close() {
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

// Locked is a pod whose lock its holder holds: what the container side
// sees of a pod.
type Locked struct {
	m *Pods
	p *pod
}

// Lock finds pod id by full ID or unique ID prefix and locks it; NotFound
// if there is none. The caller must Unlock it.
func (m *Pods) Lock(id string) (*Locked, error) {
	p, err := m.lookup(id)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	return &Locked{m: m, p: p}, nil
}

// locked is p, whose lock the caller holds, as the container side sees it.
func (m *Pods) locked(p *pod) *Locked { return &Locked{m: m, p: p} }

// Record is the pod's record.
func (l *Locked) Record() state.Sandbox { return l.p.rec }

// FilesDir is the directory of the pod's files (hostname, resolv.conf,
// hosts).
func (l *Locked) FilesDir() string { return store.PodDir(l.m.opts.RootDir, l.p.rec.ID) }

// Shim returns the pod's shim connection, reconnecting after a restart.
func (l *Locked) Shim() (shimclient.Conn, error) { return l.m.shimFor(l.p) }

// Unlock releases the pod.
func (l *Locked) Unlock() { l.p.mu.Unlock() }

// shimFor returns the pod's shim connection, reconnecting after a restart.
// The caller holds p.mu.
func (m *Pods) shimFor(p *pod) (shimclient.Conn, error) {
	if d := p.rec.ShimDied; d != nil {
		return nil, errdefs.FailedPrecondition("pod sandbox %s is not ready: its shim died at %s; stop and remove the pod", p.rec.ID, d.UTC().Format(time.RFC3339))
	}
	if p.shim != nil {
		return p.shim, nil
	}
	conn, err := m.opts.Shims.Connect(p.rec.ShimDir)
	if err != nil {
		return nil, fmt.Errorf("shim of pod %s: %w", p.rec.ID, err)
	}
	p.shim = conn
	return conn, nil
}
