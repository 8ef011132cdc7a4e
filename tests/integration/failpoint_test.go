//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/internal/failpoint"
)

// TestFailpointWalk kills cribd at each named step of the lifecycle
// (internal/failpoint.Names): a cribd-failpoints armed with one failpoint
// drives pull, run, create, start, stop, remove, stop pod, remove pod
// until it dies there; then plain cribd restarts on the same directories,
// the pod is driven to removal as kubelet would (every listed pod and
// container stopped and removed, each call retried until it succeeds,
// bounded), and the leak checker must find nothing left: no process,
// netns, veth, lease, cgroup, mount, storage container or layer, or file
// under run_dir beyond an idle cribd's. One subtest per failpoint:
//
//	-run 'TestFailpointWalk/container.remove.after-rootfs'
func TestFailpointWalk(t *testing.T) {
	bin := filepath.Join(binDir(), "cribd-failpoints")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: `make build-test` builds cribd with the failpoints tag", err)
	}
	reg := startRegistry(t, RegistryOptions{})
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte(registriesConf(reg.Addr, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range failpoint.Names {
		t.Run(name, func(t *testing.T) {
			walkFailpoint(t, bin, conf, name)
		})
	}
}

// walkFailpoint is one failpoint's walk.
func walkFailpoint(t *testing.T, bin, registriesConf, name string) {
	h := start(t, Options{NoStart: true, ExtraConfig: fmt.Sprintf("\n[image]\nregistries_conf = %q\n", registriesConf)})
	h.Binary, h.Env = bin, []string{failpoint.EnvVar + "=" + name}
	h.Start()

	// The lifecycle, until cribd dies at the failpoint.
	c := dialCRI(t, h.Socket)
	died := func(err error) bool { return err != nil && h.WaitExit(5*time.Second) }
	podCfg := failpointPodConfig(h, name)
	var podID, ctrID string
	lifecycle := []struct {
		call string
		do   func(ctx context.Context) error
	}{
		{"PullImage", func(ctx context.Context) error {
			_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
			return err
		}},
		{"RunPodSandbox", func(ctx context.Context) error {
			r, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
			if err == nil {
				podID = r.PodSandboxId
			}
			return err
		}},
		{"CreateContainer", func(ctx context.Context) error {
			r, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
				PodSandboxId: podID, SandboxConfig: podCfg, Config: stubbornConfig(),
			})
			if err == nil {
				ctrID = r.ContainerId
			}
			return err
		}},
		{"StartContainer", func(ctx context.Context) error {
			_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID})
			if err == nil {
				waitIgnoresTERM(t, ctx, c.rt, ctrID)
			}
			return err
		}},
		// A timeout, so that the stop signal goes first; the container
		// ignores it, and SIGKILL follows a second later.
		{"StopContainer", func(ctx context.Context) error {
			_, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ctrID, Timeout: 1})
			return err
		}},
		{"RemoveContainer", func(ctx context.Context) error {
			_, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctrID})
			return err
		}},
		{"StopPodSandbox", func(ctx context.Context) error {
			_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
			return err
		}},
		{"RemovePodSandbox", func(ctx context.Context) error {
			_, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
			return err
		}},
	}
	killedIn := ""
	for _, step := range lifecycle {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := step.do(ctx)
		cancel()
		if died(err) {
			killedIn = step.call
			break
		}
		if err != nil {
			t.Fatalf("%s with failpoint %s armed: %v", step.call, name, err)
		}
	}
	c.close()
	if killedIn == "" {
		t.Fatalf("the lifecycle ended and cribd never reached failpoint %s", name)
	}
	if want := "failpoint " + name + " reached"; !strings.Contains(h.Log(), want) {
		t.Fatalf("cribd died in %s without %q in its log:\n%s", killedIn, want, tail(h.Log(), 30))
	}
	t.Logf("cribd killed at %s in %s", name, killedIn)

	// Restart unarmed; kubelet pulls again if the image is not there and
	// then removes what it lists.
	h.Binary, h.Env = "", nil
	h.Start()
	c = dialCRI(t, h.Socket)
	defer c.close()
	retryCRI(t, "PullImage busybox after the restart", func(ctx context.Context) error {
		_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}})
		return err
	})
	removeAllLikeKubelet(t, c.rt)
	// Checked with cribd stopped as a node's shutdown stops it: the store's
	// own mount and socket go then, and what is left is a leak.
	h.Stop()
	h.CheckLeaks(t, h.Baseline(), "after failpoint "+name+", the pod's removal and a clean stop")
}

// criClients are a RuntimeService and ImageService client on one
// connection.
type criClients struct {
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient
}

func (c criClients) close() { c.conn.Close() }

// dialCRI connects to cribd's socket.
func dialCRI(t *testing.T, socket string) criClients {
	t.Helper()
	// Reconnect soon after a restart (gRPC's default backoff grows to two
	// minutes, which a test that kills cribd often would wait out), and
	// let a call made while cribd restarts wait for it, within its
	// context, instead of failing at once.
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	if err != nil {
		t.Fatal(err)
	}
	return criClients{conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn), img: runtimeapi.NewImageServiceClient(conn)}
}

// failpointPodConfig is a minimal pod with a log directory, as kubelet
// sends one.
func failpointPodConfig(h *Harness, name string) *runtimeapi.PodSandboxConfig {
	suffix := randomHex(3)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: "fp-" + suffix, Uid: "uid-fp-" + suffix, Namespace: "crib-it",
		},
		LogDirectory: filepath.Join(h.Dir, "logs", suffix),
		Labels:       map[string]string{"failpoint": strings.ReplaceAll(name, ".", "_")},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

// sleeperConfig is busybox sleeping, logging to the pod's log directory.
func sleeperConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleep/0.log",
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
}

// stubbornConfig is a sleeper that ignores SIGTERM (an ignored signal
// stays ignored across exec), so that StopContainer goes on to SIGKILL.
func stubbornConfig() *runtimeapi.ContainerConfig {
	cfg := sleeperConfig()
	cfg.Command = []string{"sh", "-c", "trap '' TERM; exec sleep 3600"}
	return cfg
}

// waitIgnoresTERM polls until the stubborn container's process ignores
// SIGTERM: a stop right after the start would otherwise come before the
// shell's trap.
func waitIgnoresTERM(t *testing.T, ctx context.Context, rt runtimeapi.RuntimeServiceClient, id string) {
	t.Helper()
	eventually(t, 10*time.Second, "container "+id+" ignores SIGTERM", func() (bool, string) {
		st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
		if err != nil {
			return false, err.Error()
		}
		var info struct {
			Pid int `json:"pid"`
		}
		_ = json.Unmarshal([]byte(st.Info["info"]), &info)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.Pid))
		if err != nil {
			return false, err.Error()
		}
		for _, line := range strings.Split(string(b), "\n") {
			if mask, ok := strings.CutPrefix(line, "SigIgn:"); ok {
				v, _ := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
				return v&(1<<(15-1)) != 0, "SigIgn " + strings.TrimSpace(mask)
			}
		}
		return false, "no SigIgn in /proc/pid/status"
	})
}

// removalBound is how long kubelet's retries of one call may take before
// the pod counts as wedged.
const removalBound = 30 * time.Second

// retryCRI calls do until it succeeds, for up to removalBound, as kubelet
// retries a failed call on its next sync; it fails the test with the last
// error.
func retryCRI(t testing.TB, what string, do func(ctx context.Context) error) {
	t.Helper()
	if err := retryCRIErr(what, do); err != nil {
		t.Error(err)
	}
}

func retryCRIErr(what string, do func(ctx context.Context) error) error {
	deadline := time.Now().Add(removalBound)
	var err error
	for tries := 1; ; tries++ {
		ctx, cancel := context.WithTimeout(context.Background(), removalBound)
		err = do(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wedged: %s failed %d times for %v: %w", what, tries, removalBound, err)
		}
		time.Sleep(200 * time.Millisecond) // kubelet's retry comes on a later sync
	}
}

// removeAllLikeKubelet stops and removes every container and pod cribd
// lists, as kubelet does for pods it no longer wants, retrying each call
// until it succeeds; then the lists must be empty.
func removeAllLikeKubelet(t testing.TB, rt runtimeapi.RuntimeServiceClient) {
	t.Helper()
	if err := removeAllErr(rt); err != nil {
		t.Error(err)
	}
}

func removeAllErr(rt runtimeapi.RuntimeServiceClient) error {
	var errs []error
	// A call of its own for each list: the retries below may take long.
	ctx := context.Background()
	ctrs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return fmt.Errorf("ListContainers: %w", err)
	}
	for _, ctr := range ctrs.Containers {
		id := ctr.Id
		errs = append(errs,
			retryCRIErr("StopContainer "+id, func(ctx context.Context) error {
				_, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1})
				return err
			}),
			retryCRIErr("RemoveContainer "+id, func(ctx context.Context) error {
				_, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
				return err
			}))
	}
	pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("ListPodSandbox: %w", err)
	}
	for _, pod := range pods.Items {
		id := pod.Id
		errs = append(errs,
			retryCRIErr("StopPodSandbox "+id, func(ctx context.Context) error {
				_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
				return err
			}),
			retryCRIErr("RemovePodSandbox "+id, func(ctx context.Context) error {
				_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
				return err
			}))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if ctrs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{}); err != nil || len(ctrs.Containers) > 0 {
		return fmt.Errorf("after removing everything ListContainers gives %v, %v", ctrs.GetContainers(), err)
	}
	if pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil || len(pods.Items) > 0 {
		return fmt.Errorf("after removing everything ListPodSandbox gives %v, %v", pods.GetItems(), err)
	}
	return nil
}
