// Command crib-shim is the per-pod monitor of crib. cribd starts one per pod
// (`crib-shim --dir <pod run dir>`); it creates the pod's containers with
// libcontainer (or, under a runtime handler, an OCI runtime's CLI), waits
// for them, and answers cribd over net/rpc (JSON codec) on
// <dir>/shim.sock. It outlives cribd. See api/shim for the protocol and
// internal/shim for the parts; this file holds the process: flags, the
// readiness pipe, the subreaper, signals and the wiring.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	shimapi "github.com/crib-runtime/crib/api/shim"
	"github.com/crib-runtime/crib/internal/shim/libct"
	"github.com/crib-runtime/crib/internal/shim/reaper"
	"github.com/crib-runtime/crib/internal/shim/rpc"
	"github.com/crib-runtime/crib/internal/shim/service"
)

// readyPipe is the readiness pipe cribd passes as fd 3, or nil.
var readyPipe *os.File

func init() {
	// libct's init, which runs first, has become the container's process
	// when this is libcontainer's re-exec ("crib-shim init"); this is for
	// clarity only.
	if libct.IsInit() {
		return
	}
	// Keep the main goroutine, and so no other goroutine, on the main
	// thread. libcontainer parks a locked goroutine's thread in a new
	// container's mount namespace at every start (goCreateMountSources)
	// and lets the runtime kill it on exit; the main thread cannot be
	// killed, so if it were that thread the whole process's view of
	// /proc/self and paths would change.
	runtime.LockOSThread()
	readyPipe = openReadyPipe()
}

// openReadyPipe takes fd 3 if it is a pipe. Checking the type keeps a shim
// started by hand (fd 3 unset, or some runtime descriptor) from writing to
// or closing a descriptor that is not the readiness pipe.
func openReadyPipe() *os.File {
	var st unix.Stat_t
	if err := unix.Fstat(shimapi.ReadyFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil
	}
	unix.CloseOnExec(shimapi.ReadyFD)
	return os.NewFile(shimapi.ReadyFD, "ready")
}

// ready reports the start-up outcome on the readiness pipe: "ok", or the
// error on one line. It is called once.
func ready(err error) {
	if readyPipe == nil {
		return
	}
	msg := "ok"
	if err != nil {
		msg = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	_, _ = readyPipe.WriteString(msg + "\n")
	readyPipe.Close()
	readyPipe = nil
}

func main() {
	fs := flag.NewFlagSet("crib-shim", flag.ContinueOnError)
	dir := fs.String("dir", "", "pod run directory (required)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(os.Args[1:]); err != nil {
		ready(err)
		os.Exit(2)
	}
	if err := run(*dir, *level); err != nil {
		logrus.WithError(err).Error("crib-shim failed")
		ready(err)
		os.Exit(1)
	}
}

// run starts the shim, reports readiness, serves until told to exit, and
// returns nil on a clean exit.
func run(dir, level string) error {
	logrus.SetOutput(os.Stderr) // cribd points stderr at <dir>/shim.log
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return err
	}
	logrus.SetLevel(lvl)
	// One shim per pod: trade a little CPU for a small heap.
	debug.SetGCPercent(25)

	if dir == "" {
		return errors.New("--dir is required")
	}
	// cribd's first request is the pause container's Create, whose init
	// libcontainer moves into its cgroups shortly: start the kernel's
	// wait for that already (see service.WarmAttach).
	service.WarmAttach()
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	logrus.WithFields(logrus.Fields{"dir": dir, "pid": os.Getpid()}).Info("crib-shim starting")
	// Orphans of the pod's containers become ours, not init's.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set child subreaper: %w", err)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	rp := reaper.New()
	svc, err := service.New(dir, rp)
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, shimapi.SocketName)
	l, err := rpc.Listen(sock)
	if err != nil {
		return err
	}
	pidFile := filepath.Join(dir, shimapi.PIDName)
	if err := service.WriteFileAtomic(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		l.Close()
		return fmt.Errorf("write pid file: %w", err)
	}

	stopReaper := make(chan struct{})
	go rp.Run(stopReaper)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	// SIGHUP (the session's end) and SIGPIPE (a closed log reader) must not
	// end the shim, but ignoring them with signal.Ignore would hand SIG_IGN
	// down to every container and exec process through execve. A caught
	// signal is reset to its default on exec, so catch them into a channel
	// nobody reads: Notify drops what does not fit.
	signal.Notify(make(chan os.Signal, 1), unix.SIGHUP, unix.SIGPIPE)
	go func() {
		sig := <-sigs
		logrus.WithField("signal", sig).Warn("exiting on signal; containers keep running")
		svc.RequestExit()
	}()
	go svc.Server().Serve(l)

	ready(nil)
	logrus.Info("crib-shim ready")

	<-svc.Exit()
	l.Close()
	os.Remove(sock)
	os.Remove(pidFile)
	close(stopReaper)
	logrus.Info("crib-shim exiting")
	return nil
}
