package pod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/cleanup"
	"github.com/crib-runtime/crib/internal/failpoint"
	"github.com/crib-runtime/crib/internal/nsfs"
	"github.com/crib-runtime/crib/internal/procfs"
	"github.com/crib-runtime/crib/network"
	"github.com/crib-runtime/crib/sandbox/ocispec"
	"github.com/crib-runtime/crib/sandbox/shimclient"
)

// Run creates and starts a pod from spec, whose request fields (metadata,
// labels, annotations, hostname, DNS, port mappings, sysctls, namespace
// modes, cgroup parent) the caller has filled in. It returns the pod's ID.
// On failure everything Run created is undone before it returns.
func (m *Pods) Run(ctx context.Context, spec state.Sandbox) (id string, retErr error) {
	if err := ocispec.CheckSysctls(&spec); err != nil {
		return "", err
	}
	if len(spec.UIDMappings) > 0 && (spec.NetworkMode == state.NamespaceNode || spec.IPCMode == state.NamespaceNode) {
		return "", errdefs.InvalidArgument("a pod user namespace needs the pod's own network and IPC namespaces")
	}
	driver := m.opts.CgroupDriver
	if spec.CgroupParent == "" {
		spec.CgroupParent = m.opts.CgroupParent
	} else if parent, err := cgroup.Parent(driver, spec.CgroupParent); err != nil {
		return "", errdefs.InvalidArgument("linux.cgroup_parent: %v", err)
	} else {
		spec.CgroupParent = parent
	}
	id, err := m.ids()
	if err != nil {
		return "", err
	}
	log := m.opts.Log.WithField("pod", id)
	if err := m.reserve(spec.Metadata, id); err != nil {
		return "", err
	}
	cu := cleanup.New(log)
	defer func() {
		if retErr != nil {
			cu.Run()
		}
	}()
	podID := id // id, the named result, is "" by the time a failed Run's undos run
	cu.Add("release pod name", func(context.Context) error { m.release(spec.Metadata, podID); return nil })

	rec := spec
	rec.ID = id
	rec.CreatedAt = time.Now()
	rec.Phase = state.PhaseCreating
	rec.CgroupDriver = string(driver)
	rec.CgroupsPath = cgroup.Path(driver, rec.CgroupParent, id)
	rec.ShimDir = filepath.Join(podsDir(m.opts.RunDir), id)
	rootDir := filepath.Join(podsDir(m.opts.RootDir), id)

	// The record goes to disk before anything is acquired, so that a cribd
	// killed mid-Run finds it and Stop/Remove can release what was made;
	// only its own directory comes before it (one without a record is
	// removed at start). It says beforehand what Run will make, such as a
	// pause rootfs from an image, so that Stop removes it whenever Run
	// stopped.
	if err := os.MkdirAll(rootDir, 0o711); err != nil {
		return "", fmt.Errorf("create pod dir: %w", err)
	}
	cu.Add("remove "+rootDir, func(context.Context) error { return os.RemoveAll(rootDir) })
	failpoint.Inject("sandbox.run.after-pod-dir")
	rec.PauseFromImage = m.opts.PauseImage != ""
	if rec.NetworkMode != state.NamespaceNode {
		rec.NetNSPath = filepath.Join(m.opts.NetNSDir, "crib-"+id)
		rec.UTSPath = filepath.Join(rec.ShimDir, "ns", "uts")
	}
	if rec.IPCMode != state.NamespaceNode {
		rec.IPCPath = filepath.Join(rec.ShimDir, "ns", "ipc")
		rec.ShmPath = filepath.Join(rec.ShimDir, "shm")
	}
	if len(rec.UIDMappings) > 0 {
		rec.UserNSPath = filepath.Join(rec.ShimDir, "ns", "user")
	}
	if err := m.save(&rec); err != nil {
		return "", err
	}
	failpoint.Inject("sandbox.run.after-record")
	if err := os.MkdirAll(rec.ShimDir, 0o711); err != nil {
		return "", fmt.Errorf("create pod run dir: %w", err)
	}
	cu.Add("remove "+rec.ShimDir, func(context.Context) error { return os.RemoveAll(rec.ShimDir) })
	failpoint.Inject("sandbox.run.after-run-dir")

	// The shim needs only its run directory until the pause container's
	// Create, so it is launched now: its start (mostly CPU; measured in
	// docs/architecture.md) overlaps the pod's files and namespace pins instead of the CNI ADD
	// that follows them, and the pause path gets as much shorter.
	shim := m.launchShimAsync(ctx, rec.ShimDir)
	defer shim.discard(log) // shuts it down if Run fails before taking it

	// The parent (and its ancestors) crib makes go when the pod's undo, or
	// its Stop, releases the last pod under them; the pause container's
	// cgroup goes with the shim before that.
	parentErr := m.parents.Acquire(ctx, id, driver, rec.CgroupParent)
	cu.Add("release cgroup parent "+rec.CgroupParent, func(ctx context.Context) error {
		return m.parents.Release(ctx, podID, driver, rec.CgroupParent)
	})
	if parentErr != nil {
		return "", fmt.Errorf("cgroup parent %s of pod %s: %w", rec.CgroupParent, id, parentErr)
	}
	failpoint.Inject("sandbox.run.after-cgroup-parent")

	if err := writePodFiles(rootDir, &rec); err != nil {
		return "", err
	}
	failpoint.Inject("sandbox.run.after-files")
	if rec.ShmPath != "" {
		if err := m.opts.Pinner.MountShm(rec.ShmPath, shmOptions(m.opts.ShmSize, &rec)); err != nil {
			return "", err
		}
		cu.Add("unmount "+rec.ShmPath, func(context.Context) error { return m.opts.Pinner.Unmount(rec.ShmPath) })
		failpoint.Inject("sandbox.run.after-shm")
	}
	pins := map[nsfs.Type]string{}
	if rec.NetNSPath != "" {
		pins[nsfs.Net] = rec.NetNSPath
		pins[nsfs.UTS] = rec.UTSPath
	}
	if rec.IPCPath != "" {
		pins[nsfs.IPC] = rec.IPCPath
	}
	holder, err := m.pinNamespaces(&rec, pins, cu)
	if err != nil {
		return "", err
	}
	failpoint.Inject("sandbox.run.after-netns")
	defer holder.Stop()

	// CNI needs only the pinned netns, so it runs while the shim starts
	// the pause process.
	var (
		wg             sync.WaitGroup
		netRes         *network.Result
		netErr         error
		netTook        time.Duration
		parallelBegins = time.Now()
	)
	if rec.NetNSPath != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			netRes, netErr = m.opts.Network.Setup(ctx, m.networkRequest(&rec))
			netTook = time.Since(parallelBegins)
			failpoint.Inject("sandbox.run.after-network")
		}()
	}
	// Pause joins the user namespace through the holder's /proc entry, from
	// which libcontainer reads the mappings (a pin costs it two forks); the
	// holder is cribd's child, so the entry cannot name another process.
	userNS := rec.UserNSPath
	if holder != nil {
		userNS = holder.NSPath(nsfs.User)
	}
	pid, start, conn, pauseErr := m.startPause(ctx, &rec, userNS, shim, cu)
	failpoint.Inject("sandbox.run.after-pause")
	holder.Stop()
	pauseTook := time.Since(parallelBegins)
	wg.Wait()
	if rec.NetNSPath != "" && netErr == nil {
		cu.Add("tear down pod network", func(ctx context.Context) error {
			return m.opts.Network.Teardown(ctx, m.networkRequest(&rec))
		})
	}
	if err := errors.Join(netErr, pauseErr); err != nil {
		return "", err
	}
	if netRes != nil {
		rec.NetworkAttached = true
		for _, ip := range netRes.IPs {
			rec.IPs = append(rec.IPs, ip.String())
		}
		rec.CNIResult = netRes.Raw
	}
	if err := writeHostsFile(rootDir, &rec); err != nil {
		return "", err
	}
	rec.PausePID, rec.PauseStartTime = pid, start
	rec.Phase = state.PhaseReady
	if err := m.save(&rec); err != nil {
		return "", err
	}
	failpoint.Inject("sandbox.run.after-ready")

	p := newPod(rec)
	p.shim = conn
	if !m.watchShim(p) {
		// It died since it started the pause process: noticed like any
		// later death.
		m.shimDied(context.Background(), p, fmt.Sprintf("crib-shim of pod %s exited while the pod was being made", id))
	}
	m.pods.Add(id, p)
	cu.Release()
	log.WithFields(logrus.Fields{
		"took": time.Since(rec.CreatedAt), "network": netTook, "pause": pauseTook,
	}).Infof("pod %s/%s is ready with IPs %v", rec.Metadata.Namespace, rec.Metadata.Name, rec.IPs)
	return id, nil
}

// pinNamespaces pins the pod's namespaces, inside a new user namespace of
// the pod's mappings when it has them, and puts their undo on cu. For a
// user namespace it returns the process that made it, still in it, which
// the caller stops once pause is created (nil otherwise).
func (m *Pods) pinNamespaces(rec *state.Sandbox, pins map[nsfs.Type]string, cu *cleanup.Cleanup) (*nsfs.Holder, error) {
	var (
		holder *nsfs.Holder
		err    error
	)
	switch {
	case rec.UserNSPath != "":
		holder, err = m.opts.Pinner.PinInUserNS(pins, nsfs.UserNS{
			Path: rec.UserNSPath, UIDMappings: rec.UIDMappings, GIDMappings: rec.GIDMappings,
			Holder: []string{m.opts.PauseBinary, "-hold"},
		})
		pins[nsfs.User] = rec.UserNSPath
	case len(pins) > 0:
		err = m.opts.Pinner.Pin(pins)
	}
	if err != nil {
		return nil, fmt.Errorf("pin pod namespaces: %w", err)
	}
	for _, path := range pins {
		cu.Add("unpin "+path, func(context.Context) error { return m.opts.Pinner.Unpin(path) })
	}
	return holder, nil
}

// startPause takes the pod's shim, once launched, and has it create and
// start the pause container, joining the user namespace at userNS if the
// pod has one. Its undo steps go on cu.
func (m *Pods) startPause(ctx context.Context, rec *state.Sandbox, userNS string, shim *pendingShim, cu *cleanup.Cleanup) (int, uint64, shimclient.Conn, error) {
	// The rootfs comes first so that its undo runs after the shim's, once
	// the pause process is gone.
	rootfs, args := m.pauseRootfs, []string{pauseArg0}
	if m.opts.PauseImage != "" {
		var err error
		if rootfs, args, err = m.pauseImageRootfs(ctx, rec); err != nil {
			return 0, 0, nil, err
		}
		cu.Add("remove pause image rootfs", func(context.Context) error { return m.opts.Images.RemoveRootfs(rec.ID) })
	}
	conn, err := shim.take()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("start shim for pod %s: %w", rec.ID, err)
	}
	cu.Add("shut down shim", func(ctx context.Context) error {
		defer conn.Close()
		return conn.Shutdown(ctx)
	})
	adj := clampOOMScoreAdj(sandboxOOMScoreAdj, m.oomScoreAdj)
	sysctls := podSysctls(rec, m.opts.PodDefaultSysctls)
	pid, err := shimclient.CreateStart(ctx, conn, rec.ID, filepath.Join(rec.ShimDir, "pause"), pauseSpec(rec, pauseConfig{
		UserNS: userNS, Rootfs: rootfs, Args: args, OOMScoreAdj: adj, Sysctls: sysctls,
	}))
	if err != nil {
		return 0, 0, nil, sysctlError(fmt.Errorf("start pause process for pod %s: %w", rec.ID, err), sysctls)
	}
	start, err := procfs.StartTime(pid)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("pause process %d of pod %s: %w", pid, rec.ID, err)
	}
	return pid, start, conn, nil
}

// pauseImageRootfs prepares the pause container from the configured pause
// image, for operators who require one: pulled when absent (only then can
// a pull delay a pod), a rootfs made for pod id, the image's entrypoint and
// command as arguments.
func (m *Pods) pauseImageRootfs(ctx context.Context, rec *state.Sandbox) (string, []string, error) {
	id := rec.ID
	ref := m.opts.PauseImage
	img, err := m.opts.Images.Status(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		if _, err = m.opts.Images.Pull(ctx, ref, image.Auth{}); err == nil {
			img, err = m.opts.Images.Status(ref)
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("pause image %q (runtime.pause_image): %w", ref, err)
	}
	var args []string
	if img.Config != nil {
		args = append(append(args, img.Config.Config.Entrypoint...), img.Config.Config.Cmd...)
	}
	if len(args) == 0 {
		return "", nil, errdefs.FailedPrecondition("pause image %q (runtime.pause_image) has no entrypoint or command", ref)
	}
	rootfs, err := m.opts.Images.CreateRootfs(id, img.ID, "pause_"+id, podIDMappings(rec))
	if err != nil {
		return "", nil, fmt.Errorf("pause image %q: %w", ref, err)
	}
	return rootfs, args, nil
}

// podIDMappings are the mappings a root filesystem made for the pod needs.
func podIDMappings(rec *state.Sandbox) image.IDMappings {
	return image.IDMappings{UIDs: rec.UIDMappings, GIDs: rec.GIDMappings}
}

// pendingShim is a shim being launched in the background for Run.
type pendingShim struct {
	done  chan struct{} // closed when the launch has finished
	conn  shimclient.Conn
	err   error
	taken bool
}

// launchShimAsync starts launching the shim for the pod run directory dir.
func (m *Pods) launchShimAsync(ctx context.Context, dir string) *pendingShim {
	p := &pendingShim{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.conn, p.err = m.opts.Shims.Launch(ctx, dir)
	}()
	return p
}

// take waits for the launch and hands the shim to the caller, who must shut
// it down if Run fails.
func (p *pendingShim) take() (shimclient.Conn, error) {
	<-p.done
	p.taken = true
	return p.conn, p.err
}

// discard shuts down a launched shim that was never taken: Run failed
// before it got to the pause container. The shim holds no container then.
func (p *pendingShim) discard(log logrus.FieldLogger) {
	if p.taken {
		return
	}
	<-p.done
	if p.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanup.Timeout)
	defer cancel()
	if err := p.conn.Shutdown(ctx); err != nil {
		log.WithError(err).Warn("shut down unused shim")
	}
	p.conn.Close()
}

func (m *Pods) networkRequest(rec *state.Sandbox) network.SetupRequest {
	req := network.SetupRequest{
		SandboxID:    rec.ID,
		NetNSPath:    rec.NetNSPath,
		PodName:      rec.Metadata.Name,
		PodNamespace: rec.Metadata.Namespace,
		PodUID:       rec.Metadata.UID,
	}
	for _, pm := range rec.PortMappings {
		req.PortMappings = append(req.PortMappings, network.PortMapping{
			Protocol: pm.Protocol, ContainerPort: pm.ContainerPort, HostPort: pm.HostPort, HostIP: pm.HostIP,
		})
	}
	req.Bandwidth, _ = network.BandwidthFromAnnotations(rec.Annotations)
	return req
}

// sysctlError explains a failure of the pause container that came from
// writing one of the pod's sysctls (libcontainer's init writes them and
// reports the kernel's refusal in its own words): a sysctl this kernel
// lacks is FailedPrecondition, a value it refuses InvalidArgument, both
// naming linux.sysctls and the key before the runtime's text. Other errors
// pass unchanged.
func sysctlError(err error, sysctls map[string]string) error {
	msg := err.Error()
	if !strings.Contains(msg, "sysctl") {
		return err
	}
	key := ""
	for k := range sysctls {
		// The longest key the message names: net.ipv4.conf.all.x also
		// contains net.ipv4.conf.all.
		if strings.Contains(msg, k) && len(k) > len(key) {
			key = k
		}
	}
	if key == "" {
		return err
	}
	if errors.Is(err, unix.ENOENT) || strings.Contains(msg, unix.ENOENT.Error()) {
		return errdefs.FailedPrecondition("linux.sysctls: this node's kernel has no sysctl %q in the pod's namespaces: %w", key, err)
	}
	return errdefs.InvalidArgument("linux.sysctls[%q]: the kernel refused the value %q: %w", key, sysctls[key], err)
}

// unmount detaches path if it is mounted; not mounted or missing is fine.
func unmount(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}

// shmOptions are the tmpfs options of the pod's /dev/shm. In a pod with a
// user namespace the tmpfs belongs to the host IDs of the pod's root, so
// that inside it is root's, as the host's is: the container gets it as a
// plain bind, not an idmapped one, since tmpfs takes idmapped mounts only
// from Linux 6.3 (Debian 12 runs 6.1) and, being the pod's own, has no
// host files to map.
func shmOptions(size int64, rec *state.Sandbox) string {
	opts := fmt.Sprintf("mode=1777,size=%d", size)
	uid, uok := state.HostID(rec.UIDMappings, 0)
	gid, gok := state.HostID(rec.GIDMappings, 0)
	if uok && gok {
		opts += fmt.Sprintf(",uid=%d,gid=%d", uid, gid)
	}
	return opts
}
