// Package nri adapts crib to the Node Resource Interface
// (github.com/containerd/nri): NRI plugins, connected to a socket or
// started by cribd, see pods and containers being run, created, started,
// updated, stopped and removed, and may adjust a container's OCI spec
// before it is created or a container's resources at any time.
//
// It sits beside the CRI server: server/ calls the Adapter around each
// lifecycle call (server.NRI), the container half of the sandbox manager
// calls AdjustSpec between the spec's translation and the shim's create
// (sandbox.SpecAdjuster), and plugins' own update requests go to the
// sandbox manager's UpdateContainerResources. cribd makes an Adapter only
// when [nri] enable is set; otherwise nothing here runs.
package nri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	nrilog "github.com/containerd/nri/pkg/log"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/status"

	"github.com/crib-runtime/crib/api/config"
	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/ocispec"
)

// Runtime is what the adapter needs of the sandbox manager
// (*sandbox.Manager): pods and containers to show plugins, and the
// resource updates plugins ask for.
type Runtime interface {
	Get(id string) (sandbox.View, error)
	List(f sandbox.Filter) []sandbox.View
	Container(id string) (sandbox.ContainerView, error)
	Containers(f sandbox.ContainerFilter) []sandbox.ContainerView
	ContainerSpec(id string) (json.RawMessage, error)
	UpdateContainerResources(ctx context.Context, id string, u sandbox.ResourceUpdate) error
}

// Adapter relays crib's pod and container lifecycle to NRI plugins. It is
// safe for concurrent use: the NRI library serialises the calls.
type Adapter struct {
	nri      *adaptation.Adaptation
	rt       Runtime
	log      logrus.FieldLogger
	failures *failures
	cdi      ocispec.CDI // for CDI devices plugins add; nil is CDI off
}

// New makes an adapter from the [nri] config; Start opens its socket.
// version is cribd's, told to plugins; cdi injects the CDI devices plugins
// add to containers (nil: CDI is off and they are refused).
func New(cfg config.NRI, runtimeName, version string, cdi ocispec.CDI, log logrus.FieldLogger) (*Adapter, error) {
	a := &Adapter{log: log, failures: &failures{}, cdi: cdi}
	// The library's logger is one for the process; cribd has one adapter.
	nrilog.Set(logger{log})
	adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout())
	adaptation.SetPluginRequestTimeout(cfg.RequestTimeout())
	nri, err := adaptation.New(runtimeName, version, a.synchronize, a.updateContainers,
		adaptation.WithSocketPath(cfg.SocketPath),
		adaptation.WithPluginPath(cfg.PluginPath),
		adaptation.WithPluginConfigPath(cfg.PluginConfigPath),
		adaptation.WithMetrics(a.failures),
	)
	if err != nil {
		return nil, fmt.Errorf("nri: %w", err)
	}
	a.nri = nri
	return a, nil
}

// Start starts the plugins in the plugin directory and listens on the
// socket; each plugin that registers is first shown every pod and
// container of rt.
func (a *Adapter) Start(rt Runtime) error {
	a.rt = rt
	if err := a.nri.Start(); err != nil {
		return fmt.Errorf("nri: %w", err)
	}
	return nil
}

// Stop closes the socket and the plugins' connections.
func (a *Adapter) Stop() { a.nri.Stop() }

// synchronize shows a newly registered plugin every pod and container,
// and applies the updates it answers with.
func (a *Adapter) synchronize(ctx context.Context, cb adaptation.SyncCB) error {
	var pods []*api.PodSandbox
	for _, p := range a.rt.List(sandbox.Filter{}) {
		pods = append(pods, podSandbox(&p.Sandbox))
	}
	var ctrs []*api.Container
	for _, v := range a.rt.Containers(sandbox.ContainerFilter{}) {
		ctrs = append(ctrs, viewContainer(v, a.spec(v.ID)))
	}
	updates, err := cb(ctx, pods, ctrs)
	if err != nil {
		return err
	}
	if failed, err := a.updateContainers(ctx, updates); err != nil || len(failed) > 0 {
		a.log.WithError(err).Warnf("NRI: %d container updates asked at plugin registration failed", len(failed))
	}
	return nil
}

// updateContainers applies plugins' resource updates through the sandbox
// manager, as UpdateContainerResources does; it returns those that failed
// and were not marked ignore_failure.
func (a *Adapter) updateContainers(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	var failed []*api.ContainerUpdate
	for _, u := range updates {
		res := u.GetLinux().GetResources()
		if res == nil {
			continue
		}
		if err := a.rt.UpdateContainerResources(ctx, u.GetContainerId(), resourceUpdate{res.ToOCI()}); err != nil {
			a.log.WithError(err).WithField("container", u.GetContainerId()).Warn("NRI: container update failed")
			if !u.GetIgnoreFailure() {
				failed = append(failed, u)
			}
		}
	}
	return failed, nil
}

// laterUpdateTimeout bounds the updates updateLater applies: each waits
// for its pod's lock and its shim.
const laterUpdateTimeout = time.Minute

// updateLater applies updates plugins ask of other containers while the
// caller holds a pod's lock, which the updates need.
func (a *Adapter) updateLater(updates []*api.ContainerUpdate) {
	if len(updates) == 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), laterUpdateTimeout)
		defer cancel()
		_, _ = a.updateContainers(ctx, updates)
	}()
}

// resourceUpdate is a plugin's update as the sandbox manager applies it.
type resourceUpdate struct{ res *specs.LinuxResources }

func (u resourceUpdate) Resources(hugetlb bool) (*specs.LinuxResources, error) {
	if !hugetlb && len(u.res.HugepageLimits) > 0 {
		return nil, errdefs.FailedPrecondition("NRI update: hugepage limits: this node has no hugetlb cgroup controller")
	}
	return u.res, nil
}

func (u resourceUpdate) Refused(err error) error { return fmt.Errorf("NRI update: %w", err) }

// spec is container id's OCI spec as cribd saved it; nil if unreadable.
func (a *Adapter) spec(id string) *specs.Spec {
	data, err := a.rt.ContainerSpec(id)
	if err != nil {
		return nil
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil
	}
	return &s
}

// snapshot is container id and its pod as plugins see them now; ok is
// false for an unknown container.
func (a *Adapter) snapshot(id string) (pod *api.PodSandbox, ctr *api.Container, ok bool) {
	v, err := a.rt.Container(id)
	if err != nil {
		return nil, nil, false
	}
	ctr = viewContainer(v, a.spec(v.ID))
	if p, err := a.rt.Get(v.PodID); err == nil {
		pod = podSandbox(&p.Sandbox)
	} else {
		pod = &api.PodSandbox{Id: v.PodID}
	}
	return pod, ctr, true
}

// AdjustSpec shows plugins the container about to be created and applies
// their adjustments to spec. A plugin's failure fails the create.
func (a *Adapter) AdjustSpec(ctx context.Context, pod *state.Sandbox, rec *state.Container, spec *specs.Spec) error {
	resp, err := a.nri.CreateContainer(ctx, &api.CreateContainerRequest{
		Pod:       podSandbox(pod),
		Container: container(rec, api.ContainerState_CONTAINER_CREATED, spec),
	})
	if err != nil {
		return errdefs.FailedPrecondition("NRI: %s refused to create container %s (%s): %s", a.failures.culprit(err), rec.Name, rec.ID, pluginMessage(err))
	}
	if err := applyAdjustment(spec, resp.GetAdjust(), a.cdi); err != nil {
		return fmt.Errorf("container %s (%s): %w", rec.Name, rec.ID, err)
	}
	a.updateLater(resp.GetUpdate())
	return nil
}

// UndoAdjust tells plugins that a container they adjusted was not created
// after all, as its stop and removal, as containerd and CRI-O do.
func (a *Adapter) UndoAdjust(ctx context.Context, pod *state.Sandbox, rec *state.Container, spec *specs.Spec) {
	p, c := podSandbox(pod), container(rec, api.ContainerState_CONTAINER_STOPPED, spec)
	a.stopped(ctx, p, c)
	if err := a.nri.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: p, Container: c}); err != nil {
		a.log.WithError(err).WithField("container", rec.ID).Warn("NRI RemoveContainer (create undone)")
	}
}

// RunPodSandbox runs run and tells plugins of the pod it made. A plugin
// that connects meanwhile is synchronized after it: the list it gets and
// the events it is sent neither miss nor repeat the pod. A plugin's
// failure returns the pod's ID with the error.
func (a *Adapter) RunPodSandbox(ctx context.Context, run func() (string, error)) (string, error) {
	block := a.nri.BlockPluginSync()
	defer block.Unblock()
	id, err := run()
	if err != nil {
		return "", err
	}
	p, err := a.rt.Get(id)
	if err != nil {
		return id, err
	}
	if err := a.nri.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: podSandbox(&p.Sandbox)}); err != nil {
		return id, errdefs.FailedPrecondition("NRI: %s failed RunPodSandbox of pod %s: %s", a.failures.culprit(err), id, pluginMessage(err))
	}
	return id, nil
}

// CreateContainer runs create (whose spec goes through AdjustSpec) with
// plugins' synchronization held off, as RunPodSandbox does, and tells
// them of the container it made.
func (a *Adapter) CreateContainer(ctx context.Context, create func() (string, error)) (string, error) {
	block := a.nri.BlockPluginSync()
	defer block.Unblock()
	id, err := create()
	if err != nil {
		return "", err
	}
	if pod, ctr, ok := a.snapshot(id); ok {
		if err := a.nri.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: pod, Container: ctr}); err != nil {
			a.log.WithError(err).WithField("container", id).Warn("NRI PostCreateContainer")
		}
	}
	return id, nil
}

// StartContainer tells plugins of a container about to start, runs start,
// and tells them it started. A plugin's failure before keeps it from
// starting.
func (a *Adapter) StartContainer(ctx context.Context, id string, start func() error) error {
	pod, ctr, ok := a.snapshot(id)
	if !ok {
		return start()
	}
	if err := a.nri.StartContainer(ctx, &api.StartContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return errdefs.FailedPrecondition("NRI: %s failed StartContainer of container %s: %s", a.failures.culprit(err), id, pluginMessage(err))
	}
	if err := start(); err != nil {
		return err
	}
	if pod, ctr, ok = a.snapshot(id); ok {
		if err := a.nri.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: pod, Container: ctr}); err != nil {
			a.log.WithError(err).WithField("container", id).Warn("NRI PostStartContainer")
		}
	}
	return nil
}

// StopContainer runs stop and tells plugins of the container's stop if it
// was running: a stop of a stopped container changes nothing they see.
func (a *Adapter) StopContainer(ctx context.Context, id string, stop func() error) error {
	_, before, ok := a.snapshot(id)
	if err := stop(); err != nil || !ok || before.GetState() != api.ContainerState_CONTAINER_RUNNING {
		return err
	}
	if pod, ctr, ok := a.snapshot(id); ok {
		a.stopped(ctx, pod, ctr)
	}
	return nil
}

// stopped tells plugins of a container's stop; what they answer with for
// other containers is applied.
func (a *Adapter) stopped(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) {
	resp, err := a.nri.StopContainer(ctx, &api.StopContainerRequest{Pod: pod, Container: ctr})
	if err != nil {
		a.log.WithError(err).WithField("container", ctr.GetId()).Warn("NRI StopContainer")
		return
	}
	a.updateLater(resp.GetUpdate())
}

// RemoveContainer runs remove and tells plugins of the container's
// removal (and of its stop, if it ran until then).
func (a *Adapter) RemoveContainer(ctx context.Context, id string, remove func() error) error {
	pod, ctr, ok := a.snapshot(id)
	if err := remove(); err != nil || !ok {
		return err
	}
	a.removed(ctx, pod, ctr)
	return nil
}

func (a *Adapter) removed(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) {
	if ctr.GetState() == api.ContainerState_CONTAINER_RUNNING {
		ctr.State = api.ContainerState_CONTAINER_STOPPED
		a.stopped(ctx, pod, ctr)
	}
	if err := a.nri.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr}); err != nil {
		a.log.WithError(err).WithField("container", ctr.GetId()).Warn("NRI RemoveContainer")
	}
}

// podSnapshot is pod id and its containers as plugins see them now; ok is
// false for an unknown pod.
func (a *Adapter) podSnapshot(id string) (pod *api.PodSandbox, ctrs []*api.Container, ok bool) {
	p, err := a.rt.Get(id)
	if err != nil {
		return nil, nil, false
	}
	for _, v := range a.rt.Containers(sandbox.ContainerFilter{PodID: p.ID}) {
		if v.PodID == p.ID {
			ctrs = append(ctrs, viewContainer(v, a.spec(v.ID)))
		}
	}
	return podSandbox(&p.Sandbox), ctrs, true
}

// StopPodSandbox runs stop and tells plugins of the stop of each container
// that ran and of the pod's.
func (a *Adapter) StopPodSandbox(ctx context.Context, podID string, stop func() error) error {
	pod, ctrs, ok := a.podSnapshot(podID)
	if err := stop(); err != nil || !ok {
		return err
	}
	a.podStopped(ctx, pod, ctrs)
	return nil
}

func (a *Adapter) podStopped(ctx context.Context, pod *api.PodSandbox, ctrs []*api.Container) {
	for _, c := range ctrs {
		if c.GetState() == api.ContainerState_CONTAINER_RUNNING {
			c.State = api.ContainerState_CONTAINER_STOPPED
			a.stopped(ctx, pod, c)
		}
	}
	if err := a.nri.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: pod}); err != nil {
		a.log.WithError(err).WithField("pod", pod.GetId()).Warn("NRI StopPodSandbox")
	}
}

// RemovePodSandbox runs remove and tells plugins of the removal of each
// container and of the pod (and of their stop, if the pod ran).
func (a *Adapter) RemovePodSandbox(ctx context.Context, podID string, remove func() error) error {
	p, err := a.rt.Get(podID)
	ran := err == nil && p.Phase == state.PhaseReady
	pod, ctrs, ok := a.podSnapshot(podID)
	if err := remove(); err != nil || !ok {
		return err
	}
	if ran {
		a.podStopped(ctx, pod, ctrs)
	}
	for _, c := range ctrs {
		if err := a.nri.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: c}); err != nil {
			a.log.WithError(err).WithField("container", c.GetId()).Warn("NRI RemoveContainer")
		}
	}
	if err := a.nri.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: pod}); err != nil {
		a.log.WithError(err).WithField("pod", podID).Warn("NRI RemovePodSandbox")
	}
	return nil
}

// UpdateContainer shows plugins a container's resource update and returns
// the resources to apply, as they adjusted them. Updates they ask of other
// containers are applied after.
func (a *Adapter) UpdateContainer(ctx context.Context, id string, res *specs.LinuxResources) (*specs.LinuxResources, error) {
	pod, ctr, ok := a.snapshot(id)
	if !ok {
		return res, nil
	}
	resp, err := a.nri.UpdateContainer(ctx, &api.UpdateContainerRequest{
		Pod: pod, Container: ctr, LinuxResources: api.FromOCILinuxResources(res, nil),
	})
	if err != nil {
		return nil, errdefs.FailedPrecondition("NRI: %s failed UpdateContainer of container %s: %s", a.failures.culprit(err), id, pluginMessage(err))
	}
	var others []*api.ContainerUpdate
	for _, u := range resp.GetUpdate() {
		if u.GetContainerId() == id {
			if r := u.GetLinux().GetResources(); r != nil {
				res = r.ToOCI()
			}
			continue
		}
		others = append(others, u)
	}
	a.updateLater(others)
	return res, nil
}

// PostUpdateContainer tells plugins of a container's applied update.
func (a *Adapter) PostUpdateContainer(ctx context.Context, id string) {
	pod, ctr, ok := a.snapshot(id)
	if !ok {
		return
	}
	if err := a.nri.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: pod, Container: ctr}); err != nil {
		a.log.WithError(err).WithField("container", id).Warn("NRI PostUpdateContainer")
	}
}

// pluginMessage is a plugin's error as the plugin wrote it: without the
// ttrpc status around it, whose code (Unknown) would otherwise become the
// CRI call's.
func pluginMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// failures remembers which plugin returned which error: the library
// returns a plugin's own error as it is, without its name, but reports
// each invocation to its Metrics, which this is.
type failures struct {
	mu     sync.Mutex
	recent []failure
}

type failure struct {
	plugin string
	err    error
}

// keepFailures bounds the errors remembered: only the one being returned
// is looked up, right after the call that got it.
const keepFailures = 16

var _ adaptation.Metrics = (*failures)(nil)

func (f *failures) RecordPluginInvocation(plugin, _ string, err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recent = append(f.recent, failure{plugin, err})
	if len(f.recent) > keepFailures {
		f.recent = f.recent[len(f.recent)-keepFailures:]
	}
}

func (f *failures) RecordPluginLatency(string, string, time.Duration) {}

func (f *failures) RecordPluginAdjustments(string, string, *api.ContainerAdjustment, int, int) {}

func (f *failures) UpdatePluginCount(int) {}

// culprit names the plugin that returned err ("plugin NAME"), or says "a
// plugin" when none did (the library's own errors, such as a conflict
// between two plugins' adjustments, name them in their text).
func (f *failures) culprit(err error) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.recent) - 1; i >= 0; i-- {
		if errors.Is(err, f.recent[i].err) {
			name := f.recent[i].plugin
			f.recent = append(f.recent[:i], f.recent[i+1:]...)
			return "plugin " + name
		}
	}
	return "a plugin"
}

// logger is the NRI library's logger over cribd's.
type logger struct{ log logrus.FieldLogger }

func (l logger) Debugf(_ context.Context, format string, args ...any) { l.log.Debugf(format, args...) }
func (l logger) Infof(_ context.Context, format string, args ...any)  { l.log.Infof(format, args...) }
func (l logger) Warnf(_ context.Context, format string, args ...any)  { l.log.Warnf(format, args...) }
func (l logger) Errorf(_ context.Context, format string, args ...any) {
	// cribd leaves WASM plugins out on purpose (the nri_no_wasm build
	// tag); the library calls that an error at every start.
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, adaptation.ErrWasmDisabled) {
			l.log.Debugf(format, args...)
			return
		}
	}
	l.log.Errorf(format, args...)
}
