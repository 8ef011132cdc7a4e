//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// soakSettings are TestChaosSoak's knobs, from the environment.
type soakSettings struct {
	lifecycles int   // CRIB_SOAK_LIFECYCLES, default 300
	inFlight   int   // CRIB_SOAK_IN_FLIGHT, default 4
	seed       int64 // CRIB_SOAK_SEED, default the clock
	shimKills  bool  // random shims killed too, unless CRIB_SOAK_SHIM_KILLS=0
}

func soakSettingsFromEnv(t *testing.T) soakSettings {
	s := soakSettings{lifecycles: 300, inFlight: 4, seed: time.Now().UnixNano()}
	for _, v := range []struct {
		env string
		dst any
	}{
		{"CRIB_SOAK_LIFECYCLES", &s.lifecycles},
		{"CRIB_SOAK_IN_FLIGHT", &s.inFlight},
		{"CRIB_SOAK_SEED", &s.seed},
	} {
		raw := os.Getenv(v.env)
		if raw == "" {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n <= 0 && v.env != "CRIB_SOAK_SEED" {
			t.Fatalf("%s=%q: want a positive integer", v.env, raw)
		}
		switch d := v.dst.(type) {
		case *int:
			*d = int(n)
		case *int64:
			*d = n
		}
	}
	// On by default: a pod whose shim dies is reported NOTREADY with its
	// containers EXITED (sandbox/pod/shimdeath.go), and the soak drives it to
	// removal as kubelet would. CRIB_SOAK_SHIM_KILLS=0 kills only cribd.
	s.shimKills = os.Getenv("CRIB_SOAK_SHIM_KILLS") != "0"
	return s
}

// TestChaosSoak runs pod lifecycles (run, create, start, exec, stop,
// remove) a few at a time while cribd is killed with SIGKILL at random
// moments and restarted at once. Every call is retried as kubelet would
// until it succeeds, bounded; a pod or container that cannot get through
// is wedged and fails the test. Across each kill, every container that was
// running must still run with the same PID, and after each restart every
// READY pod must have a live pause process. At the end everything is
// removed through the CRI and the leak checker must find nothing.
//
// CRIB_SOAK_LIFECYCLES (300), CRIB_SOAK_IN_FLIGHT (4), CRIB_SOAK_SEED (the
// clock; printed) and CRIB_SOAK_SHIM_KILLS=0 (kill only cribd, not shims)
// change it.
func TestChaosSoak(t *testing.T) {
	cfg := soakSettingsFromEnv(t)
	t.Logf("chaos soak: %d lifecycles, %d in flight, shim kills %v, seed %d (CRIB_SOAK_SEED=%d repeats the kill schedule)",
		cfg.lifecycles, cfg.inFlight, cfg.shimKills, cfg.seed, cfg.seed)
	rng := rand.New(rand.NewSource(cfg.seed))
	h, _ := imageHarness(t, "", "")
	c := dialCRI(t, h.Socket)
	defer c.close()
	ctx := context.Background()
	if _, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox"}}); err != nil {
		t.Fatal(err)
	}

	s := &soak{t: t, h: h, c: c, stopping: map[string]bool{}, shimKilled: map[string]bool{}}
	begin := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < cfg.inFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := s.lifecycle(i); err != nil {
					s.failf("lifecycle %d: %v", i, err)
				}
				s.done.Add(1)
			}
		}()
	}
	chaosDone := make(chan struct{})
	stopChaos := make(chan struct{})
	go func() {
		defer close(chaosDone)
		s.chaos(rng, cfg.shimKills, stopChaos)
	}()
	for i := 0; i < cfg.lifecycles; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(stopChaos)
	<-chaosDone
	took := time.Since(begin)

	removeAllLikeKubelet(t, c.rt)
	var recovery time.Duration
	if n := len(s.restarts); n > 0 {
		var sum time.Duration
		for _, d := range s.restarts {
			sum += d
		}
		recovery = sum / time.Duration(n)
	}
	t.Logf("chaos soak: %d lifecycles in %v, %d cribd kills, %d shim kills, %d calls retried (%d after a CNI plugin failed), restart to answering %v on average; seed %d",
		s.done.Load(), took.Round(time.Second), len(s.restarts), s.shimKills.Load(), s.retries.Load(), s.pluginFailures.Load(), recovery.Round(time.Millisecond), cfg.seed)
	h.Stop()
	h.CheckLeaks(t, h.Baseline(), "after the chaos soak")
}

// soak is one chaos soak's shared state.
type soak struct {
	t *testing.T
	h *Harness
	c criClients

	mu         sync.Mutex
	stopping   map[string]bool // containers a lifecycle has begun to stop
	shimKilled map[string]bool // pods whose shim the soak killed
	restarts   []time.Duration // each cribd restart, kill to Version answered

	done           atomic.Int64
	retries        atomic.Int64
	shimKills      atomic.Int64
	pluginFailures atomic.Int64 // RunPodSandbox failed in a CNI plugin, retried
}

// isPluginFailure tells whether err is a RunPodSandbox failure of a CNI
// plugin, not of crib.
func isPluginFailure(err error) bool {
	return status.Code(err) == codes.Unknown && strings.Contains(status.Convert(err).Message(), "failed to setup network for sandbox")
}

func (s *soak) failf(format string, args ...any) {
	s.t.Helper()
	s.t.Errorf(format, args...)
}

// call retries do while cribd is away (Unavailable, or a deadline while
// it restarts) and, when retryAll, on any error, for up to removalBound.
func (s *soak) call(what string, retryAll bool, do func(ctx context.Context) error) error {
	deadline := time.Now().Add(removalBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := do(ctx)
		cancel()
		if err == nil {
			return nil
		}
		code := status.Code(err)
		away := code == codes.Unavailable || code == codes.DeadlineExceeded || code == codes.Canceled
		if !away && !retryAll {
			return fmt.Errorf("%s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wedged: %s still fails after %v: %w", what, removalBound, err)
		}
		s.retries.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

// lifecycle runs pod i through run, create, start, exec, stop and remove.
// A call cut short by a kill may have done its work or not: a failed
// RunPodSandbox or CreateContainer is retried under the next attempt
// number, as kubelet does, and what the cut-short one left is found and
// removed at the end.
func (s *soak) lifecycle(i int) error {
	rt := s.c.rt
	suffix := randomHex(3)
	md := &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("soak-%d-%s", i, suffix), Uid: "uid-soak-" + suffix, Namespace: "crib-it"}
	podCfg := &runtimeapi.PodSandboxConfig{Metadata: md, LogDirectory: s.h.Dir + "/logs/" + suffix, Linux: &runtimeapi.LinuxPodSandboxConfig{}}
	var podID string
	err := s.call("RunPodSandbox", false, func(ctx context.Context) error {
		r, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
		if err != nil {
			md.Attempt++ // the cut-short attempt may hold the name
			if isPluginFailure(err) {
				// Debian's bridge plugin runs iptables-nft, whose
				// concurrent chain edits fail now and then under load
				// ("No chain/target/match by that name"). kubelet
				// retries a failed RunPodSandbox, and the leak check
				// at the end proves the failed one left nothing.
				s.pluginFailures.Add(1)
				return status.Error(codes.Unavailable, err.Error())
			}
			return err
		}
		podID = r.PodSandboxId
		return nil
	})
	if err != nil {
		return err
	}
	ctrCfg := sleeperConfig()
	var ctrID string
	err = s.call("CreateContainer", false, func(ctx context.Context) error {
		r, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: podCfg, Config: ctrCfg})
		if err != nil {
			ctrCfg.Metadata.Attempt++
			return err
		}
		ctrID = r.ContainerId
		return nil
	})
	if err == nil {
		err = s.call("StartContainer", false, func(ctx context.Context) error {
			_, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID})
			if err != nil {
				// A start cut short may have started it.
				if st, serr := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctrID}); serr == nil &&
					st.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
					return nil
				}
			}
			return err
		})
	}
	if err == nil {
		err = s.call("ExecSync", false, func(ctx context.Context) error {
			r, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"true"}, Timeout: 10})
			if err == nil && r.ExitCode != 0 {
				return fmt.Errorf("exit code %d: %s", r.ExitCode, r.Stderr)
			}
			return err
		})
	}
	if err != nil {
		if !s.podShimKilled(podID) {
			return err
		}
		// The soak killed this pod's shim: the lifecycle cannot go on,
		// but the teardown below must still get through.
		err = nil
	}
	// Teardown: every call retried until it succeeds.
	if ctrID != "" {
		s.mu.Lock()
		s.stopping[ctrID] = true
		s.mu.Unlock()
		err = errors.Join(
			s.call("StopContainer", true, func(ctx context.Context) error {
				_, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ctrID, Timeout: 0})
				return err
			}),
			s.call("RemoveContainer", true, func(ctx context.Context) error {
				_, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctrID})
				return err
			}))
	}
	return errors.Join(err,
		s.call("StopPodSandbox", true, func(ctx context.Context) error {
			_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
			return err
		}),
		s.call("RemovePodSandbox", true, func(ctx context.Context) error {
			_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
			return err
		}))
}

func (s *soak) podShimKilled(podID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shimKilled[podID]
}

// chaos kills cribd (and, with shimKills, a random pod's shim) at random
// moments until stop is closed, checking after each restart that running
// containers kept their PIDs and READY pods their pause.
func (s *soak) chaos(rng *rand.Rand, shimKills bool, stop <-chan struct{}) {
	for {
		wait := time.Duration(300+rng.Intn(2700)) * time.Millisecond
		select {
		case <-stop:
			return
		case <-time.After(wait):
		}
		if shimKills && rng.Intn(3) == 0 {
			s.killRandomShim(rng)
			continue
		}
		running := s.runningPIDs()
		killedAt := time.Now()
		s.h.Kill()
		s.h.Start()
		s.mu.Lock()
		s.restarts = append(s.restarts, time.Since(killedAt))
		s.mu.Unlock()
		s.checkAfterRestart(running)
	}
}

// runningPIDs are the running containers' PIDs as cribd reports them.
func (s *soak) runningPIDs() map[string]int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]int{}
	list, err := s.c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return out
	}
	for _, ctr := range list.Containers {
		if pid, _ := s.containerPID(ctx, ctr.Id); pid > 0 {
			out[ctr.Id] = pid
		}
	}
	return out
}

// containerPID is a running container's PID, 0 if it is not running.
func (s *soak) containerPID(ctx context.Context, id string) (int, error) {
	st, err := s.c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return 0, err
	}
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return 0, nil
	}
	var info struct {
		Pid int `json:"pid"`
	}
	_ = json.Unmarshal([]byte(st.Info["info"]), &info)
	return info.Pid, nil
}

// podPause is a pod's state and pause PID.
func (s *soak) podPause(ctx context.Context, id string) (runtimeapi.PodSandboxState, int, error) {
	st, err := s.c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return 0, 0, err
	}
	var info struct {
		Pid int `json:"pid"`
	}
	_ = json.Unmarshal([]byte(st.Info["info"]), &info)
	return st.Status.State, info.Pid, nil
}

// checkAfterRestart: each container running before the kill that no
// lifecycle has begun to stop still runs with the same PID; each READY pod
// has a live pause process.
func (s *soak) checkAfterRestart(before map[string]int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for id, pid := range before {
		s.mu.Lock()
		skip := s.stopping[id]
		s.mu.Unlock()
		if skip {
			continue
		}
		now, err := s.containerPID(ctx, id)
		s.mu.Lock()
		skip = s.stopping[id]
		s.mu.Unlock()
		switch {
		case skip:
		case err != nil:
			s.failf("ContainerStatus %s after a restart: %v", id, err)
		case now != pid:
			s.failf("container %s ran with pid %d before cribd was killed and has pid %d (0: not running) after the restart", id, pid, now)
		}
	}
	pods, err := s.c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil {
		s.failf("ListPodSandbox after a restart: %v", err)
		return
	}
	for _, p := range pods.Items {
		state, pid, err := s.podPause(ctx, p.Id)
		if err != nil || state != runtimeapi.PodSandboxState_SANDBOX_READY || processName(pid) == "crib-pause" {
			continue // gone meanwhile, or fine
		}
		// Asked again: a lifecycle may have stopped it between the two reads.
		if state, again, err := s.podPause(ctx, p.Id); err == nil && state == runtimeapi.PodSandboxState_SANDBOX_READY && again == pid {
			s.failf("pod %s reads READY but its pause pid %d is %q", p.Id, pid, processName(pid))
		}
	}
}

// killRandomShim kills the crib-shim of a random READY pod.
func (s *soak) killRandomShim(rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods, err := s.c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil || len(pods.Items) == 0 {
		return
	}
	id := pods.Items[rng.Intn(len(pods.Items))].Id
	pid := shimPID(id)
	if pid == 0 {
		return
	}
	s.mu.Lock()
	s.shimKilled[id] = true
	s.mu.Unlock()
	if syscall.Kill(pid, syscall.SIGKILL) == nil {
		s.shimKills.Add(1)
	}
}
