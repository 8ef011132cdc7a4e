package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// registryService opens a Service on a temporary overlay store whose
// registries.conf rewrites docker.io and gcr.io to the loopback registry named by
// $CRIB_TEST_REGISTRY (host:port, plain HTTP; tests/images/registry.sh
// starts one seeded by tests/images/build.sh). Without it, or not as root,
// the test is skipped.
func registryService(t testing.TB) *Service {
	t.Helper()
	addr := os.Getenv("CRIB_TEST_REGISTRY")
	if addr == "" || os.Geteuid() != 0 {
		t.Skip("needs root and CRIB_TEST_REGISTRY=host:port of a seeded test registry")
	}
	dir, err := os.MkdirTemp("/tmp", "crib-image-test-")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "registries.conf")
	body := "unqualified-search-registries = []\n"
	for _, prefix := range []string{"docker.io", "gcr.io"} {
		body += fmt.Sprintf("[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n", prefix, addr)
	}
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	s, err := New(Options{
		GraphRoot:      filepath.Join(dir, "root"),
		RunRoot:        filepath.Join(dir, "run"),
		RegistriesConf: conf,
		Log:            log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return s
}

// TestPullTimings pulls busybox from the test registry into a fresh store
// several times (removing it in between) and logs each pull's time: the
// in-process figure behind the PullImage benchmark, without gRPC. Run it
// with -cpuprofile or -trace to see where a pull's time goes.
func TestPullTimings(t *testing.T) {
	s := registryService(t)
	const name = "docker.io/library/busybox:latest"
	n := 6
	if v := os.Getenv("CRIB_PULL_ROUNDS"); v != "" {
		fmt.Sscan(v, &n)
	}
	if os.Getenv("CRIB_PULL_DEBUG") != "" {
		// The libraries log through logrus' standard logger.
		logrus.SetLevel(logrus.DebugLevel)
		logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000000"})
	}
	// Wall time suffers when the machine is shared; CPU time (this process
	// and the unpacking helpers it re-execs) much less.
	var took, cpu []time.Duration
	for i := 0; i < n; i++ {
		if err := s.Remove(name); err != nil {
			t.Fatal(err)
		}
		cpuBefore := cpuTime(t)
		begin := time.Now()
		if _, err := s.Pull(context.Background(), name, Auth{}); err != nil {
			t.Fatal(err)
		}
		if i > 0 { // the first warms caches and page cache
			took = append(took, time.Since(begin))
			cpu = append(cpu, cpuTime(t)-cpuBefore)
		}
	}
	for _, d := range [][]time.Duration{took, cpu} {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	}
	t.Logf("pull %s p50 of %d: %s wall, %s CPU (wall: %v)", name, len(took), took[len(took)/2], cpu[len(cpu)/2], took)
}

// cpuTime is the user and system time of this process and its waited-for
// children so far.
func cpuTime(t testing.TB) time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			t.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

// TestPullReusesLayers: a second image sharing the first one's layer (the
// seeded test-image-1 is busybox with another config) reuses the stored
// layer, with only the memory blob-info cache to help.
func TestPullReusesLayers(t *testing.T) {
	s := registryService(t)
	ctx := context.Background()
	for _, name := range []string{"busybox", "gcr.io/k8s-staging-cri-tools/test-image-1"} {
		if _, err := s.Pull(ctx, name, Auth{}); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := s.List("")
	if err != nil {
		t.Fatal(err)
	}
	layers, err := s.store.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || len(layers) != 1 {
		t.Errorf("%d images on %d layers, want 2 images sharing 1 layer", len(imgs), len(layers))
	}
}
