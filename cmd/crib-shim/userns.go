package main

import (
	"fmt"
	"maps"
	"slices"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	shimapi "github.com/crib-runtime/crib/api/shim"
)

// convert translates a container's spec for libcontainer. A container that
// joins its pod's user namespace by the pinned path would cost two forks
// of the shim (specconv reads the mappings from inside the namespace; some
// 10 ms each) unless the path is a process's /proc/<pid>/ns/user, which it
// reads as files. So when a running container of this shim, pause first of
// all, is in that namespace, specconv is given that process's entry; the
// entry is checked to still be the pinned namespace afterwards (the PID
// could have been reused meanwhile), and the pin goes back into the config,
// so that the container joins through the pin itself.
func (s *Shim) convert(id string, spec *specs.Spec) (*lcSpec, error) {
	pin := userNSPath(spec)
	if pin == "" {
		return convertSpec(id, spec)
	}
	if lc := s.convertThroughProcess(id, spec, pin); lc != nil {
		return lc, nil
	}
	// specconv forks children into the namespace and waits for them:
	// keep the reaper off.
	s.reaper.LockSpawn()
	defer s.reaper.UnlockSpawn()
	return convertSpec(id, spec)
}

// convertThroughProcess is convert's quick way for a spec that joins the
// user namespace pinned at pin; nil when no running container is in that
// namespace or anything goes wrong (the slow way then says what).
func (s *Shim) convertThroughProcess(id string, spec *specs.Spec, pin string) *lcSpec {
	for _, pid := range s.runningPIDs() {
		proxy := fmt.Sprintf("/proc/%d/ns/user", pid)
		if !sameNamespace(proxy, pin) {
			continue
		}
		lc, err := convertSpec(id, withUserNSPath(spec, proxy))
		if err != nil || !sameNamespace(proxy, pin) {
			return nil
		}
		replaceUserNSPath(lc.config, proxy, pin)
		return lc
	}
	return nil
}

// userNSPath is the path of the user namespace spec joins, if any.
func userNSPath(spec *specs.Spec) string {
	if spec.Linux == nil {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			return ns.Path
		}
	}
	return ""
}

// withUserNSPath is a copy of spec (sharing all but the namespace list)
// that joins the user namespace at path.
func withUserNSPath(spec *specs.Spec, path string) *specs.Spec {
	cp := *spec
	linux := *spec.Linux
	linux.Namespaces = append([]specs.LinuxNamespace(nil), spec.Linux.Namespaces...)
	for i := range linux.Namespaces {
		if linux.Namespaces[i].Type == specs.UserNamespace {
			linux.Namespaces[i].Path = path
		}
	}
	cp.Linux = &linux
	return &cp
}

// replaceUserNSPath replaces the path from, which specconv was given, with
// path in the config: the user namespace to join, and the idmapped mounts
// that map through it.
func replaceUserNSPath(config *configs.Config, from, path string) {
	for i := range config.Namespaces {
		if config.Namespaces[i].Type == configs.NEWUSER && config.Namespaces[i].Path == from {
			config.Namespaces[i].Path = path
		}
	}
	for _, m := range config.Mounts {
		if m.IDMapping != nil && m.IDMapping.UserNSPath == from {
			m.IDMapping.UserNSPath = path
		}
	}
}

// runningPIDs are the init PIDs of this shim's running containers.
func (s *Shim) runningPIDs() []int {
	s.mu.Lock()
	cs := slices.Collect(maps.Values(s.containers))
	s.mu.Unlock()
	var pids []int
	for _, c := range cs {
		if st := c.snapshot(); st.Status == shimapi.StatusRunning && st.Pid > 0 {
			pids = append(pids, st.Pid)
		}
	}
	return pids
}

// sameNamespace reports whether two namespace files are one namespace.
func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
