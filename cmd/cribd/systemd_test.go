package main

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// fakeNotifySocket is a service manager's notification socket: it listens
// on a unixgram socket in a temp dir and points NOTIFY_SOCKET at it.
func fakeNotifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// readNotify returns the next datagram, failing the test after 10s.
func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

// TestReadyWhenServing: READY=1 reaches the service manager once the gRPC
// server serves on the socket (a call made after it is answered), and only
// once however many connections come; STOPPING=1 follows on shutdown.
func TestReadyWhenServing(t *testing.T) {
	notify := fakeNotifySocket(t)
	log := logrus.New()
	log.SetLevel(logrus.DebugLevel)

	sock := filepath.Join(t.TempDir(), "crib.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, health.NewServer())
	served := make(chan error, 1)
	go func() {
		served <- g.Serve(&readyListener{Listener: lis, ready: func() { sdNotify(log, daemon.SdNotifyReady) }})
	}()
	t.Cleanup(g.Stop)

	if got := readNotify(t, notify); got != daemon.SdNotifyReady {
		t.Fatalf("first notification %q, want %q", got, daemon.SdNotifyReady)
	}
	for i := 0; i < 3; i++ {
		cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		cc.Close()
		if err != nil {
			t.Fatalf("call %d after READY=1: %v", i, err)
		}
	}

	sdNotify(log, daemon.SdNotifyStopping)
	if got := readNotify(t, notify); got != daemon.SdNotifyStopping {
		t.Fatalf("notification after the calls %q, want only %q (READY=1 is sent once)", got, daemon.SdNotifyStopping)
	}
	g.GracefulStop()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestNotifyWithoutSystemd: with no NOTIFY_SOCKET (cribd started by hand or
// by install.sh without systemd) notifying is a silent no-op.
func TestNotifyWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	sdNotify(log, daemon.SdNotifyReady)
	if entries := hook.AllEntries(); len(entries) != 0 {
		t.Fatalf("logged %d entries without a service manager, first %q", len(entries), entries[0].Message)
	}
}
