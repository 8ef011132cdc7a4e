// Package container runs a pod's app containers through the pod's
// crib-shim: it owns their records on disk (beside the pod's, see
// sandbox/store) and their lifecycle:
//
//	Create: reserve name -> record(creating, image mount IDs) -> rootfs
//	        -> image mounts -> OCI spec -> shim Create -> record(pid)
//	Start:  shim Start
//	Stop:   stop signal -> grace period -> SIGKILL
//	Remove: record(removing) -> kill -> shim Delete -> rootfs, image
//	        mounts, volumes, spec -> record -> name released
//
// Every step of Create registers its undo; a cribd killed mid-Create or
// mid-Remove leaves a record marked creating or removing that start-up
// finishes (recover.go). Exits are learnt from the state files the shims
// write (events.go) and published on the sandbox/events hub.
//
// It sees pods only through the Pods and Pod interfaces it declares
// (sandbox/pod's Lock and Locked, adapted by the sandbox facade; it does
// not import sandbox/pod): a container's lifecycle call locks its pod
// first, then the container. sandbox/pod calls StopAll, RemoveAll and
// ShimDied, through the facade, already holding the pod's lock.
package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/api/errdefs"
	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/internal/beneath"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/cleanup"
	"github.com/crib-runtime/crib/internal/failpoint"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/sandbox/events"
	"github.com/crib-runtime/crib/sandbox/ocispec"
	"github.com/crib-runtime/crib/sandbox/shimclient"
	"github.com/crib-runtime/crib/sandbox/store"
)

// Images is what containers need from the image service.
type Images interface {
	Status(ref string) (*image.Image, error)
	CreateRootfs(id string, imageID image.ID, name string, ids image.IDMappings) (string, error)
	// MountImage mounts an image read-only for an image volume; it is
	// removed with RemoveRootfs.
	MountImage(id string, imageID image.ID, name string, ids image.IDMappings) (string, error)
	RemoveRootfs(id string) error
	// WriteRootfsDiff writes the changes container id made to its image's
	// files to w as a tar (a checkpoint's rootfs-diff.tar).
	WriteRootfsDiff(id string, w io.Writer) error
}

// Pod is a pod whose lock the caller holds (*pod.Locked).
type Pod interface {
	// Record is the pod's record.
	Record() state.Sandbox
	// Shim is the pod's shim connection.
	Shim() (shimclient.Conn, error)
	// FilesDir is the directory of the pod's files.
	FilesDir() string
	// Unlock releases the pod.
	Unlock()
}

// Pods is what containers need of pods: the sandbox facade adapts
// *pod.Pods.
type Pods interface {
	// Lock finds pod id and locks it; NotFound if there is none. On
	// error the Pod is nil.
	Lock(id string) (Pod, error)
}

// Config configures a Manager: the options of sandbox.Options that are
// the containers', and what the facade found on the node.
type Config struct {
	// RootDir holds the records (<root>/pods/<pod ID>/containers); RunDir
	// the pods' shims' state files.
	RootDir, RunDir string
	// Units is systemd over D-Bus, nil without the systemd driver.
	Units cgroup.Units
	// AppArmor is the node's AppArmor; nil is a node without it.
	AppArmor ocispec.AppArmor
	// CDI resolves CDI devices, nil is CDI turned off; CDIPodAnnotations
	// also takes them from pods' cdi.k8s.io/ annotations.
	CDI               ocispec.CDI
	CDIPodAnnotations bool
	Images            Images
	Log               logrus.FieldLogger
	// IDs makes container IDs.
	IDs func() (string, error)
	// OOMScoreAdj is cribd's own oom_score_adj: the floor for every
	// container.
	OOMScoreAdj int
	// Hugetlb is whether the node mounts a hugetlb cgroup controller;
	// Cgroup2 whether it runs cgroup v2 alone (containers then get cgroup
	// namespaces).
	Hugetlb, Cgroup2 bool
	// Hierarchies are the cgroup mount points.
	Hierarchies []string
	// Hub publishes the containers' events.
	Hub *events.Hub
	// Handlers are the runtime handlers besides the default one, by name.
	Handlers map[string]Handler
	// Adjuster, if set, may change each container's OCI spec before the
	// shim creates it (NRI plugins, server/nri); nil changes nothing.
	Adjuster SpecAdjuster
}

// SpecAdjuster changes a container's OCI spec between its translation from
// the CRI request and its creation: NRI plugins' adjustments. It is called
// with the pod's lock held, so it must not call back into the manager for
// that pod.
type SpecAdjuster interface {
	// AdjustSpec may change spec, the spec of container rec (its record as
	// it will be saved) in pod; an error fails CreateContainer, which then
	// undoes every step before.
	AdjustSpec(ctx context.Context, pod *state.Sandbox, rec *state.Container, spec *specs.Spec) error
	// UndoAdjust says a container whose spec AdjustSpec adjusted was not
	// created after all (a later step failed), so plugins may release
	// what they set aside for it.
	UndoAdjust(ctx context.Context, pod *state.Sandbox, rec *state.Container, spec *specs.Spec)
}

// Manager runs the app containers of pods. It is safe for concurrent use.
type Manager struct {
	opts        Config
	pods        Pods
	ids         func() (string, error)
	oomScoreAdj int
	hugetlb     bool
	cgroup2     bool
	hierarchies []string

	// Lock order is the pod's, then ctr.mu; the store's locks come last.
	containers *store.Index[*ctr]
	ctrNames   *store.Registrar // reserved container name key -> ID

	cpu     cpuSamples
	hub     *events.Hub
	watcher *fsnotify.Watcher // containers' state files
}

// New returns the containers of cfg, none loaded yet (see Recover), whose
// pods are pods.
func New(cfg Config, pods Pods) (*Manager, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("container events: %w", err)
	}
	return &Manager{
		opts: cfg, pods: pods, ids: cfg.IDs, oomScoreAdj: cfg.OOMScoreAdj,
		hugetlb: cfg.Hugetlb, cgroup2: cfg.Cgroup2, hierarchies: cfg.Hierarchies,
		containers: newContainerIndex(), ctrNames: store.NewRegistrar(),
		cpu: cpuSamples{last: map[string]cpuSample{}}, hub: cfg.Hub, watcher: w,
	}, nil
}

// Close stops watching containers' state files.
func (m *Manager) Close() { m.watcher.Close() }

// ctr is one app container in memory; mu serialises its lifecycle (a
// StopContainer holds it through the grace period). Readers that only
// report read pub, as for pods.
type ctr struct {
	mu  sync.Mutex
	rec state.Container
	// pub is a copy of rec as of its last change (setRec).
	pub atomic.Pointer[state.Container]
}

// newCtr is a container holding rec.
func newCtr(rec state.Container) *ctr {
	c := &ctr{}
	c.setRec(rec)
	return c
}

// setRec replaces the container's record and publishes a copy, as
// pod.setRec does.
func (c *ctr) setRec(rec state.Container) {
	c.rec = rec
	c.pub.Store(&rec)
}

// published is the container's record as of its last setRec.
func (c *ctr) published() state.Container { return *c.pub.Load() }

// ContainerView is a container's record plus its running state, read from
// the state file its shim keeps.
type ContainerView struct {
	state.Container
	Shim shimapi.State
}

// ContainerState is a container's state as crib reports it; the server
// maps it to the CRI's.
type ContainerState int

// The states of a container.
const (
	// ContainerUnknown: no state could be read.
	ContainerUnknown ContainerState = iota
	// ContainerCreated: created, not started.
	ContainerCreated
	// ContainerRunning: its process runs.
	ContainerRunning
	// ContainerExited: its process ended.
	ContainerExited
)

// String is the state's name: "created", "running", "exited", "unknown".
func (s ContainerState) String() string {
	switch s {
	case ContainerCreated:
		return "created"
	case ContainerRunning:
		return "running"
	case ContainerExited:
		return "exited"
	}
	return "unknown"
}

// State is the container's state, from its shim's.
func (v ContainerView) State() ContainerState {
	switch v.Shim.Status {
	case shimapi.StatusCreated:
		return ContainerCreated
	case shimapi.StatusRunning:
		return ContainerRunning
	case shimapi.StatusStopped:
		return ContainerExited
	}
	return ContainerUnknown
}

func (m *Manager) containerDir(podID string) string { return store.ContainerDir(m.opts.RootDir, podID) }

func (m *Manager) saveContainer(rec *state.Container) error {
	return store.SaveContainer(m.opts.RootDir, rec)
}

// removeContainerRecord deletes a container's record; one already gone is
// not an error.
func (m *Manager) removeContainerRecord(podID, id string) error {
	return store.RemoveContainerRecord(m.opts.RootDir, podID, id)
}

func (m *Manager) specPath(podID, id string) string { return store.SpecPath(m.opts.RootDir, podID, id) }

// ContainerSpec returns container id's OCI spec as cribd gave it to the
// shim, as JSON.
func (m *Manager) ContainerSpec(id string) (json.RawMessage, error) {
	c, err := m.lookupContainer(id)
	if err != nil {
		return nil, err
	}
	podID := c.published().PodID
	data, err := os.ReadFile(m.specPath(podID, id))
	if err != nil {
		return nil, fmt.Errorf("OCI spec of container %s: %w", id, err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("OCI spec of container %s: %s is not valid JSON", id, m.specPath(podID, id))
	}
	return data, nil
}

// shimStatePath is where a pod's shim records a container's state.
func shimStatePath(shimDir, id string) string {
	return shimapi.StateFile(shimDir, id)
}

// ContainerRequest is a container for CreateContainer in crib's terms:
// the server validates the CRI request and converts it
// (server/container_create.go), as it does a pod's.
type ContainerRequest struct {
	// Name and Attempt are the container's metadata; Name is not empty.
	Name    string
	Attempt uint32
	// Image is the image's reference; not empty. The image must be in the
	// store.
	Image       string
	Labels      map[string]string
	Annotations map[string]string
	// LogPath is the log file's path relative to the pod's log directory;
	// "" is no log file.
	LogPath string
	// Stdin and StdinOnce are the container's stdin options, for attach.
	Stdin, StdinOnce bool
	// StopSignal is the number of the signal StopContainer sends first; 0
	// is the image's STOPSIGNAL, else SIGTERM.
	StopSignal int
	// TargetID names the container whose PID namespace a PID mode TARGET
	// joins.
	TargetID string
	// Mounts are the request's mounts as ContainerStatus reports them.
	Mounts []state.Mount
	// Spec is the rest of the request, which only ocispec reads.
	Spec ocispec.Config
}

// CreateContainer creates an app container in pod podID from req; it
// returns the container's ID. The image must be in the store.
func (m *Manager) CreateContainer(ctx context.Context, podID string, req ContainerRequest) (string, error) {
	p, err := m.pods.Lock(podID)
	if err != nil {
		return "", err
	}
	ref := req.Image
	defer p.Unlock()
	pod := p.Record()
	if pod.Phase != state.PhaseReady || !procfs.Alive(pod.PausePID, pod.PauseStartTime) {
		return "", errdefs.FailedPrecondition("pod sandbox %s is not ready", pod.ID)
	}
	logPath, err := containerLogPath(pod.LogDirectory, req.LogPath)
	if err != nil {
		return "", err
	}
	if err := makeLogDir(pod.LogDirectory, logPath); err != nil {
		return "", err
	}
	if err := ocispec.CheckUserNS(req.Spec, &pod); err != nil {
		return "", err
	}
	handler, err := m.runtimeOf(&pod)
	if err != nil {
		return "", err
	}
	img, err := m.opts.Images.Status(ref)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return "", errdefs.NotFound("image %q is not in the store: pull it first", ref)
		}
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	vols, err := m.resolveImageMounts(req.Spec)
	if err != nil {
		return "", err
	}
	id, err := m.ids()
	if err != nil {
		return "", err
	}
	key := strings.Join([]string{req.Name, pod.ID, fmt.Sprint(req.Attempt)}, "_")
	if err := m.reserveContainer(key, id); err != nil {
		return "", err
	}
	log := m.opts.Log.WithField("pod", pod.ID).WithField("container", id)
	cu := cleanup.New(log)
	defer cu.Run()
	cu.Add("release container name", func(context.Context) error { m.releaseContainer(key, id); return nil })

	// The record goes to disk first, marked creating, and its undo runs
	// last: a cribd killed at any later step leaves a record that start-up
	// undoes (see finishContainers), never a writable layer, volume or
	// shim container that no record names.
	rec := state.Container{
		ID: id, PodID: pod.ID, Name: req.Name, Attempt: req.Attempt,
		Labels: req.Labels, Annotations: req.Annotations, CreatedAt: time.Now(),
		Image: ref, ImageRef: imageRef(img), ImageID: img.ID.CRIString(),
		LogPath: logPath, Creating: true,
	}
	for i := range vols {
		if vols[i].rec.ID, err = m.ids(); err != nil {
			return "", err
		}
		rec.ImageMounts = append(rec.ImageMounts, vols[i].rec)
	}
	if err := os.MkdirAll(m.containerDir(pod.ID), 0o711); err != nil {
		return "", fmt.Errorf("create container dir: %w", err)
	}
	if err := m.saveContainer(&rec); err != nil {
		return "", err
	}
	cu.Add("remove container record", func(context.Context) error { return m.removeContainerRecord(pod.ID, id) })
	failpoint.Inject("container.create.after-record")

	rootfs, err := m.opts.Images.CreateRootfs(id, img.ID, key, image.IDMappings{UIDs: pod.UIDMappings, GIDs: pod.GIDMappings})
	if err != nil {
		return "", err
	}
	cu.Add("remove root filesystem", func(context.Context) error { return m.opts.Images.RemoveRootfs(id) })
	failpoint.Inject("container.create.after-rootfs")
	imageSources, err := m.mountImages(cu, id, vols, image.IDMappings{UIDs: pod.UIDMappings, GIDs: pod.GIDMappings})
	if err != nil {
		return "", err
	}

	var imgCfg imgspec.ImageConfig
	if img.Config != nil {
		imgCfg = img.Config.Config
	}
	in := ocispec.Input{
		ContainerID:       id,
		Config:            req.Spec,
		Pod:               &pod,
		PodFilesDir:       p.FilesDir(),
		PausePID:          pod.PausePID,
		TargetPID:         m.targetPID(req.TargetID),
		Image:             imgCfg,
		Rootfs:            rootfs,
		VolumeDir:         store.VolumeDir(m.opts.RootDir, pod.ID, id),
		ImageMountSources: imageSources,
		OOMScoreAdjFloor:  m.oomScoreAdj,
		HugetlbController: m.hugetlb,
		AppArmor:          m.opts.AppArmor,
		CgroupV2:          m.cgroup2,
		CDI:               m.opts.CDI,
		CDIPodAnnotations: m.opts.CDIPodAnnotations,
	}
	spec, err := ocispec.Build(in)
	if err != nil {
		return "", err
	}
	if m.opts.Adjuster != nil {
		// Before anything is derived from the spec: the record's cgroup,
		// user and resources are the adjusted container's.
		if err := m.opts.Adjuster.AdjustSpec(ctx, &pod, &rec, spec); err != nil {
			return "", err
		}
		cu.Add("undo spec adjustment", func(ctx context.Context) error {
			m.opts.Adjuster.UndoAdjust(ctx, &pod, &rec, spec)
			return nil
		})
	}
	if err := checkHandlerMounts(handler, spec); err != nil {
		return "", err
	}
	if vols := ocispec.ImageVolumes(in); len(vols) > 0 {
		cu.Add("remove image volumes", func(context.Context) error { return os.RemoveAll(in.VolumeDir) })
		for _, v := range vols {
			if err := os.MkdirAll(v.Source, 0o755); err != nil {
				return "", fmt.Errorf("image volume %s: %w", v.Path, err)
			}
		}
	}
	rec.Rootfs, rec.StopSignal, rec.CgroupsPath = rootfs, stopSignal(req.StopSignal, imgCfg), spec.Linux.CgroupsPath
	if spec.Process != nil {
		u := spec.Process.User
		rec.User = &state.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	rec.Resources = appliedResources(spec)
	rec.Mounts = req.Mounts
	// Informational (ContainerStatus verbose), so written without the
	// record's fsyncs: CreateContainer is on kubelet's pod start path. A
	// file torn by a crash reads as no spec.
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("encode OCI spec of container %s: %w", id, err)
	}
	if err := os.WriteFile(m.specPath(pod.ID, id), specJSON, 0o600); err != nil {
		return "", fmt.Errorf("save OCI spec of container %s: %w", id, err)
	}
	cu.Add("remove OCI spec", func(context.Context) error { return os.Remove(m.specPath(pod.ID, id)) })
	conn, err := p.Shim()
	if err != nil {
		return "", err
	}
	// Registered before the call: a shim that dies inside Create leaves a
	// half-made container (its cgroup, perhaps a libcontainer init in it)
	// that only this undo knows of. A Create that failed cleanly left
	// nothing, and the shim takes deleting an unknown ID as done.
	cu.Add("delete container in shim", func(ctx context.Context) error {
		return m.deleteHalfCreated(ctx, conn, id, rec.CgroupsPath, handler)
	})
	pid, err := conn.Create(ctx, &shimapi.CreateRequest{
		ID: id, Bundle: shimapi.BundleDir(pod.ShimDir, id), Spec: spec, LogPath: logPath, LogDir: pod.LogDirectory,
		Attachable: true, Stdin: req.Stdin, StdinOnce: req.StdinOnce, Runtime: handlerRuntime(handler),
	})
	if err != nil {
		return "", fmt.Errorf("create container %s in pod %s: %w", req.Name, pod.ID, err)
	}
	failpoint.Inject("container.create.after-shim-create")
	rec.Pid = pid
	if rec.PidStartTime, err = procfs.StartTime(pid); err != nil {
		return "", fmt.Errorf("container %s init process %d: %w", id, pid, err)
	}
	rec.Creating = false
	if err := m.saveContainer(&rec); err != nil {
		return "", err
	}
	failpoint.Inject("container.create.after-pid-record")
	m.containers.Add(id, newCtr(rec))
	cu.Release()
	v := m.viewOf(rec)
	m.publish(events.Created, v)
	m.watchContainer(v)
	log.Infof("created container %s (%s) in pod %s/%s", rec.Name, ref, pod.Metadata.Namespace, pod.Metadata.Name)
	return id, nil
}

// deleteHalfCreated undoes a container's create in the shim. When the shim
// cannot (it died, or its Delete failed), cribd does the shim's part, so a
// dead shim leaves no cgroup behind.
func (m *Manager) deleteHalfCreated(ctx context.Context, conn shimclient.Conn, id, cgroupsPath string, h *Handler) error {
	err := conn.Delete(ctx, id)
	if err == nil {
		return nil
	}
	if rerr := m.removeCgroupWithoutShim(ctx, cgroupsPath); rerr != nil {
		return errors.Join(err, rerr)
	}
	return deleteInRuntime(ctx, h, id)
}

// removeCgroupWithoutShim does a shim's Delete of a container's cgroup
// when no shim can: it kills what runs there (a libcontainer init the
// shim was creating when it died has no PID in any record) and removes it.
func (m *Manager) removeCgroupWithoutShim(ctx context.Context, cgroupsPath string) error {
	if err := cgroup.Kill(ctx, m.hierarchies, cgroupsPath); err != nil {
		return err
	}
	return cgroup.Remove(ctx, m.opts.Units, m.hierarchies, cgroupsPath)
}

// containerLogPath joins the pod's log directory and the container's log
// path, refusing a path that leaves the directory.
func containerLogPath(dir, rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if dir == "" {
		return "", errdefs.InvalidArgument("config.log_path %q is set but the pod has no log_directory", rel)
	}
	if filepath.IsAbs(rel) {
		return "", errdefs.InvalidArgument("config.log_path %q must be relative to the pod's log_directory", rel)
	}
	full := filepath.Join(dir, rel)
	if r, err := filepath.Rel(dir, full); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", errdefs.InvalidArgument("config.log_path %q leaves the pod's log_directory %s", rel, dir)
	}
	return full, nil
}

// makeLogDir creates the directories between the pod's log directory and
// the log file without following symlinks (internal/beneath): cribd runs as
// root, and a symlink planted in the pod's log directory must not make it
// create directories elsewhere. The shim opens the file itself the same way.
func makeLogDir(dir, logPath string) error {
	if logPath == "" {
		return nil
	}
	// The pod's log directory itself is kubelet's (crictl users may leave
	// it to crib to make); only what lies beneath it is resolved strictly.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create pod log directory %s: %w", dir, err)
	}
	rel, err := filepath.Rel(dir, filepath.Dir(logPath))
	if err != nil || rel == "." {
		return nil // the file lies right in the pod's log directory
	}
	switch err := beneath.MkdirAll(dir, rel, 0o755); {
	case err == nil:
		return nil
	case errors.Is(err, beneath.ErrSymlink):
		return errdefs.FailedPrecondition("config.log_path: %v in the pod's log_directory %s: crib does not follow symlinks there", err, dir)
	case errors.Is(err, beneath.ErrEscapes):
		return errdefs.InvalidArgument("config.log_path: %v", err)
	default:
		return fmt.Errorf("config.log_path: create log directory in %s: %w", dir, err)
	}
}

// imageRef is the reference ContainerStatus reports: a repo digest when the
// image has one, else its ID.
func imageRef(img *image.Image) string {
	if len(img.RepoDigests) > 0 {
		return img.RepoDigests[0]
	}
	return img.ID.CRIString()
}

// targetPID is the init PID of the container a TARGET PID namespace names.
func (m *Manager) targetPID(target string) int {
	if target == "" {
		return 0
	}
	c, err := m.lookupContainer(target)
	if err != nil {
		return 0
	}
	if rec := c.published(); procfs.Alive(rec.Pid, rec.PidStartTime) {
		return rec.Pid
	}
	return 0
}

// newContainerIndex is the index of containers, named in errors as the
// CRI names them.
func newContainerIndex() *store.Index[*ctr] {
	return store.NewIndex[*ctr]("container", "container_id")
}

// reserveContainer claims the container name key for id, or names the
// container that holds it.
func (m *Manager) reserveContainer(key, id string) error {
	var held *store.ReservedError
	if err := m.ctrNames.Reserve(key, id); errors.As(err, &held) {
		return errdefs.AlreadyExists("container name %q is reserved for container %s", key, held.ID)
	} else if err != nil {
		return err
	}
	return nil
}

// releaseContainer frees the container name key if container id holds it.
func (m *Manager) releaseContainer(key, id string) { m.ctrNames.Release(key, id) }

func containerKey(rec *state.Container) string {
	return strings.Join([]string{rec.Name, rec.PodID, fmt.Sprint(rec.Attempt)}, "_")
}

// lookupContainer finds a container by full ID or unique ID prefix.
func (m *Manager) lookupContainer(id string) (*ctr, error) { return m.containers.Get(id) }

// containerView reads c's running state.
func (m *Manager) containerView(c *ctr) ContainerView {
	return m.viewOf(c.published())
}

// viewOf derives a container's running state: from the last state cribd
// saved in the record once that is an exit (the pod stopped, or its shim
// died), else from the state file its shim keeps.
func (m *Manager) viewOf(rec state.Container) ContainerView {
	v := ContainerView{Container: rec, Shim: m.recordedState(rec)}
	// A shim that died cannot record its container's exit: a running state
	// whose process is gone is an exit of unknown code.
	if v.Shim.Status == shimapi.StatusRunning && !procfs.Alive(rec.Pid, rec.PidStartTime) && !shimclient.Alive(store.PodDir(m.opts.RunDir, rec.PodID)) {
		v.Shim.Status = shimapi.StatusStopped
		v.Shim.ExitCode = 255
	}
	return v
}

// recordedState is a container's state as last written down, by cribd or
// its shim, with nothing derived from the live system.
func (m *Manager) recordedState(rec state.Container) shimapi.State {
	if rec.LastState != nil && rec.LastState.Status == shimapi.StatusStopped {
		// An exit cribd saved is final; the shim's file may say
		// otherwise only if the shim died before recording it.
		return *rec.LastState
	}
	var st shimapi.State
	if err := state.ReadJSON(shimStatePath(store.PodDir(m.opts.RunDir, rec.PodID), rec.ID), &st); err != nil {
		if rec.LastState != nil {
			return *rec.LastState
		}
		return shimapi.State{ID: rec.ID, Status: shimapi.StatusUnknown}
	}
	return st
}

// Container returns one container by ID or unique ID prefix.
func (m *Manager) Container(id string) (ContainerView, error) {
	c, err := m.lookupContainer(id)
	if err != nil {
		return ContainerView{}, err
	}
	return m.containerView(c), nil
}

// ContainerFilter selects containers in Containers. Zero fields match all.
type ContainerFilter struct {
	IDPrefix string
	PodID    string
	State    *ContainerState
	Labels   map[string]string
}

// Containers lists the containers matching f, oldest first.
func (m *Manager) Containers(f ContainerFilter) []ContainerView {
	cs := m.containers.List()
	var out []ContainerView
	for _, c := range cs {
		rec := c.published()
		// The record's filters first: the view reads the shim's state file,
		// and a pod's stats ask for its few containers among all the node's.
		if f.IDPrefix != "" && !strings.HasPrefix(rec.ID, f.IDPrefix) {
			continue
		}
		if f.PodID != "" && !strings.HasPrefix(rec.PodID, f.PodID) {
			continue
		}
		if !store.LabelsMatch(rec.Labels, f.Labels) {
			continue
		}
		v := m.viewOf(rec)
		if f.State != nil && v.State() != *f.State {
			continue
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}
