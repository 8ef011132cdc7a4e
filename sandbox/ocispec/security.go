package ocispec

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// DefaultCapabilities is the set an unprivileged container starts with, the
// same as containerd's and CRI-O's.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func applySecurity(spec *specs.Spec, in Input) error {
	sc := in.Config.cri.GetLinux().GetSecurityContext()
	proc := spec.Process
	caps, err := capabilities(sc.GetPrivileged(), sc.GetCapabilities())
	if err != nil {
		return err
	}
	proc.Capabilities = caps
	proc.NoNewPrivileges = sc.GetNoNewPrivs()
	if proc.ApparmorProfile, err = containerAppArmor(sc, in.AppArmor); err != nil {
		return err
	}
	if sc.GetPrivileged() {
		return nil // no masked paths, no seccomp, all devices (applyDevices)
	}
	// The masked and read-only paths are the request's, and no list means
	// none. kubelet always sends the lists it wants: the runtime defaults
	// for procMount Default and empty ones for Unmasked. A proto3 repeated
	// field cannot carry "empty" apart from "absent" (an empty list is not
	// encoded at all and decodes as nil), so crib's own defaults for an
	// absent list would silently re-mask an Unmasked container. containerd
	// (GetMaskedPaths() != nil over empty defaults) and CRI-O (nil adds
	// nothing) read it the same way: clients that want masking send it.
	spec.Linux.MaskedPaths = sc.GetMaskedPaths()
	spec.Linux.ReadonlyPaths = sc.GetReadonlyPaths()
	def := in.SeccompDefault
	if def == nil {
		def = DefaultSeccomp(caps.Bounding)
	}
	spec.Linux.Seccomp, err = seccompProfile(sc, def)
	return err
}

// capabilities returns the bounding, effective and permitted sets: all
// capabilities when privileged, else the defaults with the request's adds
// and drops ("ALL" works in both).
func capabilities(privileged bool, req *runtimeapi.Capability) (*specs.LinuxCapabilities, error) {
	all := allCapabilities()
	var set []string
	if privileged {
		set = all
	} else {
		set = append(set, DefaultCapabilities...)
		for _, c := range req.GetAddCapabilities() {
			if strings.EqualFold(c, "ALL") {
				set = append([]string(nil), all...)
				continue
			}
			name, err := capName(c, all)
			if err != nil {
				return nil, errdefs.InvalidArgument("linux.security_context.capabilities.add_capabilities: %v", err)
			}
			set = addCap(set, name)
		}
		for _, c := range req.GetDropCapabilities() {
			if strings.EqualFold(c, "ALL") {
				set = nil
				continue
			}
			name, err := capName(c, all)
			if err != nil {
				return nil, errdefs.InvalidArgument("linux.security_context.capabilities.drop_capabilities: %v", err)
			}
			set = dropCap(set, name)
		}
	}
	caps := &specs.LinuxCapabilities{Bounding: set, Effective: set, Permitted: set}
	for _, c := range req.GetAddAmbientCapabilities() {
		name, err := capName(c, all)
		if err != nil {
			return nil, errdefs.InvalidArgument("linux.security_context.capabilities.add_ambient_capabilities: %v", err)
		}
		caps.Ambient = addCap(caps.Ambient, name)
		caps.Inheritable = addCap(caps.Inheritable, name)
	}
	return caps, nil
}

// allCapabilities is every capability this process may pass on: those in
// its bounding set. (Root here lacks CAP_SYS_RESOURCE; asking libcontainer
// for it fails the container's start with EPERM.)
func allCapabilities() []string {
	self, err := capability.NewPid2(0)
	if err == nil {
		err = self.Load()
	}
	var out []string
	for _, c := range capability.ListKnown() {
		if err == nil && !self.Get(capability.BOUNDING, c) {
			continue
		}
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

// capName normalises "net_admin" or "CAP_NET_ADMIN" and checks it is known.
func capName(c string, known []string) (string, error) {
	name := strings.ToUpper(c)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	for _, k := range known {
		if k == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("capability %q is unknown, or not in the bounding set crib runs with on this host", c)
}

func addCap(set []string, c string) []string {
	for _, x := range set {
		if x == c {
			return set
		}
	}
	return append(set, c)
}

func dropCap(set []string, c string) []string {
	out := set[:0:0]
	for _, x := range set {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// seccompProfile resolves RuntimeDefault (crib's shipped profile),
// Unconfined and Localhost (a JSON profile file on the node).
func seccompProfile(sc *runtimeapi.LinuxContainerSecurityContext, def *specs.LinuxSeccomp) (*specs.LinuxSeccomp, error) {
	p := sc.GetSeccomp()
	kind, path := p.GetProfileType(), p.GetLocalhostRef()
	if p == nil {
		switch legacy := sc.GetSeccompProfilePath(); {
		case legacy == "" || legacy == "unconfined":
			return nil, nil
		case legacy == "runtime/default" || legacy == "docker/default":
			kind = runtimeapi.SecurityProfile_RuntimeDefault
		case strings.HasPrefix(legacy, "localhost/"):
			kind, path = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(legacy, "localhost/")
		default:
			return nil, errdefs.InvalidArgument("linux.security_context.seccomp_profile_path %q is not understood", legacy)
		}
	}
	switch kind {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return def, nil
	case runtimeapi.SecurityProfile_Localhost:
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, errdefs.InvalidArgument("linux.security_context.seccomp.localhost_ref: %v", err)
		}
		var prof specs.LinuxSeccomp
		if err := json.Unmarshal(data, &prof); err != nil {
			return nil, errdefs.InvalidArgument("linux.security_context.seccomp.localhost_ref %s: %v", path, err)
		}
		return &prof, nil
	}
	return nil, errdefs.InvalidArgument("linux.security_context.seccomp.profile_type %v is unknown", kind)
}
