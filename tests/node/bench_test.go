//go:build node && bench

package node

// The VM lane's benchmark (`make bench-node`, part of `make bench`): in the
// cgroup v2 + systemd guest, crib.service and containerd 2.4.2 (CRI plugin,
// runc; scripts/build-containerd.sh on the host, put in the share by
// suite.sh) run at once, each with a bridge+portmap network and the same
// loopback registry, under the cgroupfs driver and then the systemd driver
// (containerd's SystemdCgroup = false, then true). Each measurement
// alternates between the two runtimes, so what the emulated guest's speed
// does to one it does to the other: read the ratios. It reports; it asserts
// nothing about speed. Without containerd in the share it measures crib
// alone and says so.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/tests/harness"
)

const (
	benchImage      = "docker.io/library/busybox:latest"
	benchPauseImage = "registry.k8s.io/pause:3.9" // containerd's sandbox image (harness config)
	benchWarmup     = 2
	benchReadyPods  = 20 // sequential lifecycles per runtime and driver, after benchWarmup
	benchStatsCtrs  = 50
	benchStatsCalls = 30 // per runtime, after benchWarmup
	benchParallel   = 5  // pods started or removed at once when filling the node
	benchPodTimeout = 3 * time.Minute
	benchOctet      = 7 // containerd's bridge ctrdit7, 10.87.7.0/24
)

// benchTarget is one runtime seen through the CRI.
type benchTarget struct {
	name   string
	rt     runtimeapi.RuntimeServiceClient
	img    runtimeapi.ImageServiceClient
	parent string // the pods' cgroup parent; "" is crib's default
}

// TestBenchNode measures, under each cgroup driver, pod ready (RunPodSandbox
// + CreateContainer + StartContainer of a busybox sleep, one pod at a time,
// removed before the next, untimed); under the systemd driver also
// ListContainerStats and ListPodSandboxStats with 50 running containers,
// each in a pod of its own as kubelet would have them.
func TestBenchNode(t *testing.T) {
	dumpOnFailure(t)
	ctrdDir := installContainerd(t)
	head := fmt.Sprintf("VM lane benchmark, %s, guest: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), guestDescription())
	if ctrdDir == "" {
		head += "containerd: not in the share (make bench-node puts it there): crib alone\n"
	}
	if err := harness.BenchReport(head); err != nil {
		t.Error(err)
	}
	for _, driver := range []string{"cgroupfs", "systemd"} {
		t.Run(driver, func(t *testing.T) {
			// Each half reports as soon as it is done: a run cut short
			// under emulation still leaves the first half's figures.
			var report strings.Builder
			defer func() {
				if err := harness.BenchReport(report.String()); err != nil {
					t.Error(err)
				}
			}()
			withCgroupDriver(t, driver)
			targets := []*benchTarget{cribTarget(t)}
			if ctrdDir != "" {
				ctrd := harness.StartContainerd(t, harness.ContainerdOptions{
					RegistryAddr: registryAddr, Octet: benchOctet, SystemdCgroup: driver == "systemd",
				})
				parent := ctrd.CgroupParent
				if driver == "systemd" {
					// As kubelet sends a slice: its full path. containerd
					// takes the slice from the last element for its
					// scopes, but loads the path itself for
					// ListPodSandboxStats, and a bare "x.slice" fails
					// there ("cgroups: invalid group path").
					parent = "/" + parent
				}
				targets = append(targets, &benchTarget{name: "containerd", rt: ctrd.Runtime(), img: ctrd.Images(), parent: parent})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			for _, tg := range targets {
				tg.pull(ctx, t, benchImage)
				if tg.name == "containerd" {
					tg.pull(ctx, t, benchPauseImage)
				}
			}

			sandbox := map[*benchTarget][]time.Duration{}
			ready := map[*benchTarget][]time.Duration{}
			for i := -benchWarmup; i < benchReadyPods; i++ {
				for _, tg := range targets {
					pod, sb, rd, err := tg.startPod(ctx, fmt.Sprintf("ready-%s-%d", driver, i+benchWarmup))
					if err != nil {
						t.Fatal(err)
					}
					if err := tg.removePod(ctx, pod); err != nil {
						t.Fatal(err)
					}
					if i >= 0 {
						sandbox[tg] = append(sandbox[tg], sb)
						ready[tg] = append(ready[tg], rd)
					}
				}
			}
			fmt.Fprintf(&report, "%s driver, sequential lifecycles (n=%d each, after %d warm-up):\n", driver, benchReadyPods, benchWarmup)
			report.WriteString(benchLine("  RunPodSandbox p50", targets, sandbox, 50))
			report.WriteString(benchLine("  pod ready (run + create + start) p50", targets, ready, 50))
			report.WriteString(benchLine("  pod ready p99", targets, ready, 99))

			if driver != "systemd" {
				return
			}
			pods := map[*benchTarget][]string{}
			for _, tg := range targets {
				pods[tg] = tg.fill(ctx, t, benchStatsCtrs)
			}
			ctrStats := map[*benchTarget][]time.Duration{}
			podStats := map[*benchTarget][]time.Duration{}
			for i := -benchWarmup; i < benchStatsCalls; i++ {
				for _, tg := range targets {
					c, p := tg.stats(ctx, t)
					if i >= 0 {
						ctrStats[tg] = append(ctrStats[tg], c)
						podStats[tg] = append(podStats[tg], p)
					}
				}
			}
			fmt.Fprintf(&report, "%s driver, %d running containers, one per pod (n=%d calls each, alternating):\n", driver, benchStatsCtrs, benchStatsCalls)
			report.WriteString(benchLine("  ListContainerStats p50", targets, ctrStats, 50))
			report.WriteString(benchLine("  ListContainerStats p99", targets, ctrStats, 99))
			report.WriteString(benchLine("  ListPodSandboxStats p50", targets, podStats, 50))
			for _, tg := range targets {
				if err := tg.removeAll(ctx, pods[tg]); err != nil {
					t.Error(err)
				}
			}
		})
		if t.Failed() {
			break
		}
	}
}

// installContainerd copies containerd, its shim and runc from the share
// (suite.sh puts them in containerd/ when $CRIB_CONTAINERD_DIR is set) to
// the guest's disk, as crib's binaries are installed: the share is 9p
// without a cache, and every shim and runc exec would read its binary over
// it. It returns the directory, or "" when the share has none.
func installContainerd(t *testing.T) string {
	t.Helper()
	src := filepath.Join(shareDir, "containerd")
	if _, err := os.Stat(filepath.Join(src, "containerd")); err != nil {
		return ""
	}
	dst := "/usr/local/lib/crib-bench/containerd"
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		run(t, "install", "-D", "-m", "0755", filepath.Join(src, b), filepath.Join(dst, b))
	}
	t.Setenv("CRIB_CONTAINERD_DIR", dst)
	return dst
}

// guestDescription names the guest's CPUs, memory and kernel.
func guestDescription() string {
	kernel, _ := exec.Command("uname", "-r").Output()
	cpus, _ := exec.Command("nproc").Output()
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:], " ")
	}
	return fmt.Sprintf("%s vCPUs, MemTotal %s, kernel %s, cgroup v2", strings.TrimSpace(string(cpus)), mem, strings.TrimSpace(string(kernel)))
}

// benchLine is one measurement's percentile for each target and, with two,
// the first's over the second's.
func benchLine(what string, targets []*benchTarget, ds map[*benchTarget][]time.Duration, p int) string {
	var parts []string
	for _, tg := range targets {
		parts = append(parts, fmt.Sprintf("%s %v", tg.name, harness.Percentile(ds[tg], p)))
	}
	line := what + ": " + strings.Join(parts, ", ")
	if len(targets) == 2 {
		if b := harness.Percentile(ds[targets[1]], p); b > 0 {
			line += fmt.Sprintf(" (%s / %s %.2f)", targets[0].name, targets[1].name,
				float64(harness.Percentile(ds[targets[0]], p))/float64(b))
		}
	}
	return line + "\n"
}

// cribTarget is crib.service through its socket.
func cribTarget(t *testing.T) *benchTarget {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+criSocket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &benchTarget{name: "crib", rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn)}
}

func (tg *benchTarget) pull(ctx context.Context, t *testing.T, image string) {
	t.Helper()
	if _, err := tg.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}}); err != nil {
		t.Fatalf("%s: PullImage %s: %v", tg.name, image, err)
	}
}

// startPod runs a pod and a busybox sleep in it; it returns the pod's ID,
// the RunPodSandbox time and the time until StartContainer returned. A pod
// that failed half way is removed.
func (tg *benchTarget) startPod(ctx context.Context, name string) (pod string, sandbox, ready time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, benchPodTimeout)
	defer cancel()
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: "uid-" + name},
		Hostname: name,
		Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: tg.parent},
	}
	begin := time.Now()
	p, err := tg.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", 0, 0, fmt.Errorf("%s: RunPodSandbox %s: %w", tg.name, name, err)
	}
	sandbox = time.Since(begin)
	c, err := tg.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.PodSandboxId, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
			Image:    &runtimeapi.ImageSpec{Image: benchImage},
			Command:  []string{"sleep", "3600"},
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
	})
	if err == nil {
		_, err = tg.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId})
	}
	if err != nil {
		return "", 0, 0, errors.Join(fmt.Errorf("%s: container in %s: %w", tg.name, name, err), tg.removePod(ctx, p.PodSandboxId))
	}
	return p.PodSandboxId, sandbox, time.Since(begin), nil
}

// removePod stops and removes a pod (untimed).
func (tg *benchTarget) removePod(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, benchPodTimeout)
	defer cancel()
	if _, err := tg.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("%s: StopPodSandbox %s: %w", tg.name, id, err)
	}
	if _, err := tg.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("%s: RemovePodSandbox %s: %w", tg.name, id, err)
	}
	return nil
}

// fill starts n pods of one running container, benchParallel at a time,
// and returns their IDs; each is removed when the test ends if the test
// has not removed it.
func (tg *benchTarget) fill(ctx context.Context, t *testing.T, n int) []string {
	t.Helper()
	pods := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, benchParallel)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pods[i], _, _, errs[i] = tg.startPod(ctx, fmt.Sprintf("stats-%d", i))
		}()
	}
	wg.Wait()
	var started []string
	for _, p := range pods {
		if p != "" {
			started = append(started, p)
		}
	}
	t.Cleanup(func() { _ = tg.removeAll(context.Background(), started) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return pods
}

// removeAll removes pods, benchParallel at a time; a pod already gone is
// no error.
func (tg *benchTarget) removeAll(ctx context.Context, pods []string) error {
	errs := make([]error, len(pods))
	sem := make(chan struct{}, benchParallel)
	var wg sync.WaitGroup
	for i, id := range pods {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := tg.removePod(ctx, id); err != nil && !strings.Contains(err.Error(), "NotFound") {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stats times one ListContainerStats and one ListPodSandboxStats, each
// without a filter, and checks each lists every pod's entry.
func (tg *benchTarget) stats(ctx context.Context, t *testing.T) (ctrs, pods time.Duration) {
	t.Helper()
	begin := time.Now()
	c, err := tg.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	ctrs = time.Since(begin)
	if err != nil || len(c.GetStats()) != benchStatsCtrs {
		t.Fatalf("%s: ListContainerStats: %d entries, %v; want %d", tg.name, len(c.GetStats()), err, benchStatsCtrs)
	}
	begin = time.Now()
	p, err := tg.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	pods = time.Since(begin)
	if err != nil || len(p.GetStats()) != benchStatsCtrs {
		t.Fatalf("%s: ListPodSandboxStats: %d entries, %v; want %d", tg.name, len(p.GetStats()), err, benchStatsCtrs)
	}
	return ctrs, pods
}
