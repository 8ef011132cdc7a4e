package ocispec

import (
	"regexp"
	"strings"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/api/state"
)

// Limits on a pod's sysctls: kubelet's own limit on a name, and less than a
// page for a value (the kernel reads at most a page from a write to
// /proc/sys).
const (
	maxSysctlName  = 253
	maxSysctlValue = 4095
)

// sysctlName is a sysctl name as kubelet accepts it: segments of letters,
// digits, '-' and '_' (not at either end), separated by '.' or '/' (the
// slash form lets an interface name hold a dot, as sysctl.d(5) does).
var sysctlName = regexp.MustCompile(`^([a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?[./])*[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?$`)

// ipcSysctls are the IPC namespace's sysctls (with fs.mqueue.*), as runc's
// validator lists them.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// DotSysctl returns a sysctl name in its dotted form: a name whose first
// separator is '/' uses '/' between levels and may hold '.' in a level, so
// the two swap ("net/ipv4/conf/eth0.100/rp_filter" is
// "net.ipv4.conf.eth0/100.rp_filter").
func DotSysctl(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

// CheckSysctls validates a pod's sysctls before anything is made for it:
// each name must be well formed and belong to a namespace the pod has of
// its own (net.* its network namespace; the System V IPC ones and
// fs.mqueue.* its IPC namespace; kernel.domainname its UTS namespace),
// and each value must be one line of text (tabs allowed, as in ranges)
// shorter than a page. Errors are InvalidArgument naming linux.sysctls and
// the key. Whether the kernel has the sysctl and takes the value is known
// only when pause sets it (see sandbox's sysctlError).
func CheckSysctls(rec *state.Sandbox) error {
	for key, value := range rec.Sysctls {
		if len(key) > maxSysctlName || !sysctlName.MatchString(key) {
			return errdefs.InvalidArgument("linux.sysctls: %q is not a sysctl name (dot- or slash-separated words of letters, digits, '-' and '_', at most %d characters)", clip(key), maxSysctlName)
		}
		if len(value) > maxSysctlValue {
			return errdefs.InvalidArgument("linux.sysctls[%q]: the value is %d bytes, more than the kernel reads (%d)", key, len(value), maxSysctlValue)
		}
		if i := strings.IndexFunc(value, func(r rune) bool { return r != '\t' && isControl(r) }); i >= 0 {
			return errdefs.InvalidArgument("linux.sysctls[%q]: the value holds the control character %q", key, value[i])
		}
		name := DotSysctl(key)
		var need string
		var own bool
		switch {
		case strings.HasPrefix(name, "net."):
			need, own = "network", rec.NetworkMode != state.NamespaceNode
		case ipcSysctls[name], strings.HasPrefix(name, "fs.mqueue."):
			need, own = "IPC", rec.IPCMode != state.NamespaceNode
		case name == "kernel.domainname":
			// The pod's UTS namespace is its own exactly when its network
			// namespace is (hostNetwork pods share the host's name).
			need, own = "UTS", rec.NetworkMode != state.NamespaceNode
		case name == "kernel.hostname":
			return errdefs.InvalidArgument("linux.sysctls: %q conflicts with the pod's hostname: set hostname instead", key)
		default:
			return errdefs.InvalidArgument("linux.sysctls: %q is not a namespaced sysctl and cannot be set for a pod", key)
		}
		if !own {
			return errdefs.InvalidArgument("linux.sysctls: %q needs the pod's own %s namespace, but the pod uses the host's", key, need)
		}
	}
	return nil
}

// isControl reports an ASCII control character or DEL.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// clip shortens a long input for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
