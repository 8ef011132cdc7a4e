// Command cribd is crib's CRI server: kubelet and crictl talk to it over a
// unix socket. Pods keep running while cribd is stopped or restarted; on
// start it reloads their records and reconnects to their shims.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/opencontainers/cgroups/systemd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage/pkg/reexec"
	"google.golang.org/grpc"

	"github.com/crib-runtime/crib/api/config"
	"github.com/crib-runtime/crib/image"
	"github.com/crib-runtime/crib/internal/apparmor"
	"github.com/crib-runtime/crib/internal/cdi"
	"github.com/crib-runtime/crib/internal/cgroup"
	"github.com/crib-runtime/crib/internal/shim/ocicli"
	"github.com/crib-runtime/crib/network"
	"github.com/crib-runtime/crib/sandbox"
	"github.com/crib-runtime/crib/sandbox/ocispec"
	"github.com/crib-runtime/crib/server"
	"github.com/crib-runtime/crib/server/metrics"
	"github.com/crib-runtime/crib/server/nri"
	"github.com/crib-runtime/crib/server/streaming"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func init() {
	// Namespace work parks goroutines on threads it then discards; keep the
	// main goroutine on the main thread so the daemon's own view never moves.
	runtime.LockOSThread()
}

func main() {
	// The image store's overlay driver re-execs this binary to unpack
	// layers in a chroot; in such a child this runs the helper and exits.
	if reexec.Init() {
		return
	}
	// `cribd import ARCHIVE...`: see import.go.
	if isImport(os.Args[1:]) {
		mainImport(os.Args[2:])
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "cribd: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cribd", flag.ContinueOnError)
	src := configFlags(fs)
	logLevel := fs.String("log-level", "", "log level (trace, debug, info, warn, error); overrides log.level")
	printConfig := fs.Bool("print-config", false, "print the effective configuration (the main file and drop-ins merged) and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintf(stdout, "cribd %s\n", version)
		return nil
	}
	sources := src(fs)
	cfg, files, err := config.LoadSources(sources)
	if err != nil {
		return err
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
	}
	if *printConfig {
		fmt.Fprint(stdout, filesComment(files)+cfg.String())
		return nil
	}
	log := newLogger(cfg.Log)
	log.WithField("files", files).Debug("configuration read")
	return serve(cfg, configSources{Sources: sources, Files: files}, log)
}

// configFlags defines --config and --config-dir on fs and returns what
// reads them after fs.Parse.
func configFlags(fs *flag.FlagSet) func(*flag.FlagSet) config.Sources {
	mainFile := fs.String("config", config.DefaultPath, "path to the TOML config file")
	dir := fs.String("config-dir", "", "directory of drop-in *.toml files applied after the config file in name order (default: "+config.DropInDirName+" next to the config file)")
	return func(fs *flag.FlagSet) config.Sources {
		// The default file and directory may be missing; ones named on
		// the command line must be there.
		src := config.Sources{Main: *mainFile, MainOptional: true, DropInDir: *dir}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "config":
				src.MainOptional = false
			case "config-dir":
				src.DropInDirRequired = true
			}
		})
		return src
	}
}

// filesComment is --print-config's header: the files merged, in order.
func filesComment(files []string) string {
	if len(files) == 0 {
		return "# no config file: built-in defaults\n"
	}
	var b strings.Builder
	b.WriteString("# merged from, in order:\n")
	for _, f := range files {
		fmt.Fprintf(&b, "#   %s\n", f)
	}
	return b.String()
}

func newLogger(c config.Log) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(os.Stderr)
	level, _ := logrus.ParseLevel(c.Level) // validated by config
	log.SetLevel(level)
	if c.Format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return log
}

// serve runs cribd with cfg, read from src, until SIGINT or SIGTERM.
func serve(cfg config.Config, src configSources, log *logrus.Logger) error {
	units, err := cgroupDriver(cfg.Runtime.CgroupDriver, systemd.IsRunningSystemd)
	if err != nil {
		return err
	}
	if units != nil {
		defer units.Close()
	}
	shimBin, err := findBinary(cfg.Runtime.ShimBinary, "crib-shim")
	if err != nil {
		return fmt.Errorf("runtime.shim_binary: %w", err)
	}
	pauseBin, err := findBinary(cfg.Runtime.PauseBinary, "crib-pause")
	if err != nil {
		return fmt.Errorf("runtime.pause_binary: %w", err)
	}
	// [metrics]: nil when off.
	mtr, reg, err := newMetrics(cfg.Metrics)
	if err != nil {
		return err
	}
	// [network.overlay]: see overlay.go.
	overlayMgr, err := startOverlay(cfg, log)
	if err != nil {
		return err
	}
	if overlayMgr != nil {
		defer overlayMgr.Close()
	}
	netOpts := network.Options{
		ConfDir:  cfg.Network.ConfDir,
		BinDirs:  cfg.Network.BinDirs,
		CacheDir: cfg.Network.CacheDir,
		Log:      log.WithField("component", "network"),
	}
	if mtr != nil {
		netOpts.Observe = mtr.ObserveCNI
	}
	netMgr, err := network.New(netOpts)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	defer netMgr.Close()
	images, err := newImageService(cfg, mtr, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := images.Close(); err != nil {
			log.WithError(err).Error("image store shutdown")
		}
	}()
	// Layers of pulls (or root filesystems) cut short by a crash have no
	// image or container over them; the store's temp files and a pull's
	// staged blobs are left too. (sandbox.New then reconciles the records
	// with the store and the run dir.)
	if err := images.RemoveOrphanLayers(); err != nil {
		log.WithError(err).Warn("image store: removing orphaned layers")
	}
	aa, err := setupAppArmor(cfg.RunDir, log)
	if err != nil {
		return err
	}
	rro := sandbox.RecursiveReadOnlySupported()
	handlers, err := runtimeHandlers(cfg, rro, ocicli.ProbeFeatures, log.WithField("component", "runtime"))
	if err != nil {
		return err
	}
	// [nri]: nil when off, and then nothing of NRI runs.
	cdiReg := cdiRegistry(cfg.CDI, log)
	nriAdapter, err := newNRI(cfg.NRI, cdiReg, log)
	if err != nil {
		return err
	}
	var adjuster sandbox.SpecAdjuster
	var nriServer server.NRI
	if nriAdapter != nil {
		adjuster, nriServer = nriAdapter, nriAdapter
	}
	sandboxes, err := sandbox.New(sandbox.Options{
		RootDir:      cfg.RootDir,
		RunDir:       cfg.RunDir,
		NetNSDir:     cfg.Runtime.NetNSDir,
		CgroupDriver: cgroup.Driver(cfg.Runtime.CgroupDriver),
		CgroupParent: cfg.Runtime.CgroupParent,
		Units:        unitsOrNil(units),
		ShimBinary:   shimBin,
		PauseBinary:  pauseBin,
		PauseImage:   cfg.Runtime.PauseImage,
		ShmSize:      cfg.Runtime.ShmSize,
		LogLevel:     cfg.Log.Level,
		Network:      netMgr,
		AppArmor:     aa,
		CDI:          cdiReg,

		CDIPodAnnotations: cfg.CDI.Enabled && cfg.CDI.PodAnnotations,
		PodDefaultSysctls: cfg.Runtime.PodDefaultSysctls,
		Handlers:          handlers,
		Images:            images,
		Adjuster:          adjuster,
		Log:               log.WithField("component", "sandbox"),
	})
	if err != nil {
		return fmt.Errorf("sandbox manager: %w", err)
	}
	defer sandboxes.Close()
	if nriAdapter != nil {
		if err := nriAdapter.Start(sandboxes); err != nil {
			return err
		}
		defer nriAdapter.Stop()
		log.WithField("socket", cfg.NRI.SocketPath).Info("NRI enabled")
	}
	if mtr != nil {
		if err := metrics.RegisterInventory(reg, sandboxes); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		msrv, err := metrics.Serve(cfg.Metrics.Address, reg, log.WithField("component", "metrics"))
		if err != nil {
			return err
		}
		defer msrv.Close()
		log.WithField("address", msrv.Addr).Info("metrics server listening")
	}

	stream, err := streaming.Start(streaming.Options{
		Address:     cfg.Streaming.Address,
		Port:        cfg.Streaming.Port,
		TLSCertFile: cfg.Streaming.TLSCertFile,
		TLSKeyFile:  cfg.Streaming.TLSKeyFile,
		IdleTimeout: cfg.Streaming.Idle(),

		TLSClientCAFile: cfg.Streaming.TLSClientCAFile,
	}, sandboxes, log.WithField("component", "streaming"))
	if err != nil {
		return fmt.Errorf("streaming: %w", err)
	}
	defer stream.Close()
	log.WithFields(logrus.Fields{"url": stream.URL, "idle_timeout": cfg.Streaming.IdleTimeout}).Info("streaming server listening")
	info, err := statusInfo(cfg, src, stream.URL)
	if err != nil {
		return err
	}

	lis, err := listen(cfg.GRPC)
	if err != nil {
		return err
	}
	// The metrics interceptors go outside crib's, so they count the
	// status codes clients get.
	unary := []grpc.UnaryServerInterceptor{server.Interceptor(log.WithField("component", "cri"))}
	streams := []grpc.StreamServerInterceptor{server.StreamInterceptor(log.WithField("component", "cri"))}
	if mtr != nil {
		unary = append([]grpc.UnaryServerInterceptor{mtr.UnaryInterceptor()}, unary...)
		streams = append([]grpc.StreamServerInterceptor{mtr.StreamInterceptor()}, streams...)
	}
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(streams...))
	var netStatus server.NetworkStatus = netMgr
	if overlayMgr != nil {
		netStatus = overlayStatus{cni: netMgr, overlay: overlayMgr}
	}
	userns := true
	if err := sandbox.UserNamespacesSupported(cfg.RootDir, cfg.RunDir, []string{pauseBin, "-hold"}); err != nil {
		userns = false
		log.WithError(err).Warn("pods cannot have user namespaces of their own (hostUsers: false)")
	}
	server.New(server.Options{
		Version:      version,
		CgroupDriver: cfg.Runtime.CgroupDriver,
		Sandboxes:    sandboxes,
		Network:      netStatus,
		Images:       images,
		Streaming:    stream,
		Log:          log,

		RecursiveReadOnlyMounts: rro,
		UserNamespaces:          userns,
		Handlers:                withNodeUserNS(handlers, userns),
		AppArmor:                aa,
		Info:                    info,
		NRI:                     nriServer,
	}).Register(g)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		log.Info("shutting down; pods keep running")
		sdNotify(log, daemon.SdNotifyStopping)
		g.GracefulStop()
	}()
	log.WithField("socket", cfg.GRPC.Socket).Infof("cribd %s serving CRI", version)
	ready := &readyListener{Listener: lis, ready: func() { sdNotify(log, daemon.SdNotifyReady) }}
	if err := g.Serve(ready); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// setupAppArmor loads crib's default AppArmor profile when the node
// enforces AppArmor. Without AppArmor cribd goes on (containers that ask
// for a profile are refused); with AppArmor but no loadable profile it
// stops, since containers would otherwise run unconfined unnoticed.
func setupAppArmor(runDir string, log logrus.FieldLogger) (*apparmor.Host, error) {
	aa, err := apparmor.Setup(apparmor.HostPaths(), runDir)
	switch {
	case errors.Is(err, apparmor.ErrDisabled):
		log.WithError(err).Info("containers run without AppArmor")
		return aa, nil
	case err != nil:
		return nil, fmt.Errorf("apparmor: %w", err)
	}
	log.WithField("profile", apparmor.DefaultProfile).Info("AppArmor enabled: containers that ask for no profile run under crib's default")
	return aa, nil
}

// cdiRegistry is the CDI registry of the configured spec directories, or
// nil (an interface holding no registry) with CDI off. It reads no spec
// file until a container asks for a device.
func cdiRegistry(c config.CDI, log logrus.FieldLogger) ocispec.CDI {
	if !c.Enabled {
		log.Info("CDI off: containers that name devices in cdi_devices are refused")
		return nil
	}
	return cdi.New(c.SpecDirs, log.WithField("component", "cdi"))
}

// cgroupDriver checks that the configured cgroup driver can run here and,
// for systemd, that systemd answers on D-Bus, whose connection it returns
// (nil for cgroupfs). booted is sd_booted(3).
func cgroupDriver(driver string, booted func() bool) (*cgroup.DBus, error) {
	if err := cgroup.CheckDriver(cgroup.Driver(driver), booted); err != nil {
		return nil, err
	}
	if cgroup.Driver(driver) != cgroup.Systemd {
		return nil, nil
	}
	units := &cgroup.DBus{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := units.Ping(ctx); err != nil {
		return nil, fmt.Errorf(`key "runtime.cgroup_driver": "systemd": systemd does not answer on the system bus: %w`, err)
	}
	return units, nil
}

// unitsOrNil keeps a nil *cgroup.DBus from becoming a non-nil interface.
func unitsOrNil(u *cgroup.DBus) cgroup.Units {
	if u == nil {
		return nil
	}
	return u
}

// newNRI returns the NRI adapter, or nil when [nri] is off.
func newNRI(c config.NRI, cdi ocispec.CDI, log *logrus.Logger) (*nri.Adapter, error) {
	if !c.Enable {
		return nil, nil
	}
	return nri.New(c, server.RuntimeName, version, cdi, log.WithField("component", "nri"))
}

// newMetrics returns cribd's metrics on a registry of its own, or nils
// when [metrics] is off.
func newMetrics(c config.Metrics) (*metrics.Metrics, *prometheus.Registry, error) {
	if c.Address == "" {
		return nil, nil, nil
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	return m, reg, nil
}

// newImageService opens the image store under <root_dir>/storage.
func newImageService(cfg config.Config, mtr *metrics.Metrics, log *logrus.Logger) (*image.Service, error) {
	pinned := append([]string(nil), cfg.Image.PinnedImages...)
	if cfg.Runtime.PauseImage != "" {
		pinned = append(pinned, cfg.Runtime.PauseImage)
	}
	opts := image.Options{
		GraphRoot:       filepath.Join(cfg.RootDir, "storage"),
		RunRoot:         filepath.Join(cfg.RunDir, "storage"),
		Driver:          cfg.Image.StorageDriver,
		RegistriesConf:  cfg.Image.RegistriesConf,
		AuthFile:        cfg.Image.AuthFile,
		SignaturePolicy: cfg.Image.SignaturePolicy,
		Pinned:          pinned,
		ProgressTimeout: cfg.Image.ProgressTimeout(),
		UserAgent:       "crib/" + version,
		Log:             log.WithField("component", "image"),
	}
	if mtr != nil {
		opts.ObservePull = mtr.ObservePull
	}
	svc, err := image.New(opts)
	if err != nil {
		return nil, fmt.Errorf("image service: %w", err)
	}
	return svc, nil
}

// listen opens the CRI socket, replacing a stale one, with mode 0660.
func listen(c config.GRPC) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(c.Socket), 0o711); err != nil {
		return nil, fmt.Errorf("grpc.socket: %w", err)
	}
	if err := os.Remove(c.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("grpc.socket: remove stale socket: %w", err)
	}
	lis, err := net.Listen("unix", c.Socket)
	if err != nil {
		return nil, fmt.Errorf("grpc.socket: %w", err)
	}
	if err := os.Chmod(c.Socket, 0o660); err != nil {
		lis.Close()
		return nil, fmt.Errorf("grpc.socket: %w", err)
	}
	if c.SocketGroup != "" {
		g, err := user.LookupGroup(c.SocketGroup)
		if err != nil {
			lis.Close()
			return nil, fmt.Errorf("grpc.socket_group: %w", err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(c.Socket, 0, gid); err != nil {
			lis.Close()
			return nil, fmt.Errorf("grpc.socket_group: %w", err)
		}
	}
	return lis, nil
}

// findBinary resolves a configured executable: the configured path, else
// name next to cribd's own executable, else name on $PATH.
func findBinary(configured, name string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", err
		}
		return configured, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found next to cribd or on $PATH", name)
	}
	return p, nil
}
