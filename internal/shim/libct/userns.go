package libct

import (
	"fmt"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ConvertThroughProcess is Convert's quick way for a spec that joins the
// user namespace pinned at pin. Convert, given the pin, would fork twice
// into the namespace to read its mappings (specconv reads them from inside
// the namespace) unless the path is a process's /proc/<pid>/ns/user, which
// it reads as files. So when one of pids (running containers of the pod,
// pause first of all) is in that namespace, specconv is given that
// process's entry; the entry is checked to still be the pinned namespace
// afterwards (the PID could have been reused meanwhile), and the pin goes
// back into the config, so that the container joins through the pin
// itself. It returns nil when no process of pids is in that namespace or
// anything goes wrong (Convert then says what).
func ConvertThroughProcess(id string, spec *specs.Spec, pin string, pids []int) *Spec {
	for _, pid := range pids {
		proxy := fmt.Sprintf("/proc/%d/ns/user", pid)
		if !sameNamespace(proxy, pin) {
			continue
		}
		lc, err := Convert(id, withUserNSPath(spec, proxy))
		if err != nil || !sameNamespace(proxy, pin) {
			return nil
		}
		replaceUserNSPath(lc.config, proxy, pin)
		return lc
	}
	return nil
}

// UserNSPath is the path of the user namespace spec joins, if any.
func UserNSPath(spec *specs.Spec) string {
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

// sameNamespace reports whether two namespace files are one namespace.
func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
