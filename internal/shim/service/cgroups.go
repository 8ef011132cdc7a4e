package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/sirupsen/logrus"

	"github.com/crib-runtime/crib/internal/cgroup"
)

// cgroupRoot is where crib expects the cgroup hierarchies to be mounted.
const cgroupRoot = cgroup.Root

// cgroupDirs removes what crib-shim's containers leave in the cgroup
// hierarchies. libcontainer creates a container's cgroup in each hierarchy
// it manages, and Destroy removes it only in those; release removes the
// container's cgroup directory in every hierarchy (a pure v2 host's
// cgroup2 mounted at /sys/fs/cgroup, a hybrid host's v1 controllers,
// name=systemd and unified below it). The parents above the containers'
// cgroups are cribd's: it makes the missing ones before the pod's first
// cgroup and removes them with the pod (internal/cgroup.Parents).
//
// Callers serialise release against container creation (the reaper's
// spawn lock).
type cgroupDirs struct {
	hierarchies []string
}

func newCgroupDirs() (*cgroupDirs, error) {
	h, err := cgroup.Hierarchies()
	if err != nil {
		return nil, err
	}
	return &cgroupDirs{hierarchies: h}, nil
}

// release removes the cgroup of cgroupsPath (either driver's form) and its
// sub-cgroups in every hierarchy. Under systemd libcontainer's Destroy has
// stopped the container's scope first.
func (d *cgroupDirs) release(cgroupsPath string) error {
	dir, err := cgroup.Dir(cgroupsPath)
	if err != nil {
		return err
	}
	// Tasks just killed leave within milliseconds; two seconds covers a
	// loaded node without holding the reaper's spawn lock for long.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, h := range d.hierarchies {
		if err := cgroup.RemoveTree(ctx, filepath.Join(h, dir)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WarmAttach starts, in the background, a no-op move of the shim into the
// cgroup it is already in, so that libcontainer's moves of a new container's
// init into its cgroups, some milliseconds later, do not wait for the
// kernel. The shim calls it at start-up (cribd's first request is the pause
// container's Create) and when a Create request arrives.
//
// Every write to a cgroup.procs file takes the kernel's global
// cgroup_threadgroup_rwsem for writing. It is a per-CPU rw-semaphore: the
// first writer after a quiet spell waits for an RCU grace period before it
// gets the lock (rcu_sync_enter), and writers that follow within about one
// grace period of the last do not. libcontainer's first attach (cpuset) paid
// that wait at every container start, on the pause path. Started early, the
// wait overlaps the shim's start-up, the request's decoding and
// libcontainer's setup (docs/architecture.md, "crib-shim inside", has the
// measurements). The write itself changes nothing: the shim stays where it
// is. (Hosts that mount their cgroup hierarchies with "favordynmods" have
// no such wait.)
func WarmAttach() {
	go func() {
		procs, err := ownCgroupProcs()
		if err == nil {
			err = os.WriteFile(procs, []byte(strconv.Itoa(os.Getpid())), 0)
		}
		if err != nil {
			logrus.WithError(err).Debug("warm cgroup attach")
		}
	}()
}

// ownCgroupProcs is the cgroup.procs file of the shim's own cgroup, in the
// devices hierarchy on cgroup v1 (always mounted where libcontainer runs
// containers) or in the unified hierarchy. It is looked up afresh each time:
// a stale path would move the shim.
func ownCgroupProcs() (string, error) {
	if cgroups.IsCgroup2UnifiedMode() {
		paths, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
		if err != nil {
			return "", err
		}
		own, ok := paths[""]
		if !ok {
			return "", errors.New("no unified cgroup in /proc/self/cgroup")
		}
		return filepath.Join(cgroupRoot, own, "cgroup.procs"), nil
	}
	dir, err := cgroups.GetOwnCgroupPath("devices")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "cgroup.procs"), nil
}
