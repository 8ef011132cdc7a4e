package ocispec

import (
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
	"github.com/crib-runtime/crib/internal/apparmor"
)

// AppArmor is what the translator needs to know of the node's AppArmor
// (internal/apparmor.Host is the real one). A nil AppArmor is a node
// without it.
type AppArmor interface {
	// Enabled says whether the kernel enforces AppArmor and crib's default
	// profile (apparmor.DefaultProfile) is loaded.
	Enabled() bool
	// Loaded says whether a profile of this name is loaded in the kernel.
	Loaded(name string) (bool, error)
}

// appArmorRequest is a CRI AppArmor request, from either of its fields.
type appArmorRequest struct {
	kind  runtimeapi.SecurityProfile_ProfileType
	name  string // Localhost only
	asked bool   // false: the request names no profile at all
}

// parseAppArmor reads the structured SecurityProfile p, which wins, or
// else the deprecated string legacy ("runtime/default",
// "localhost/<name>", "unconfined"). field names the structured field in
// errors.
func parseAppArmor(p *runtimeapi.SecurityProfile, legacy, field string) (appArmorRequest, error) {
	if p != nil {
		r := appArmorRequest{kind: p.GetProfileType(), asked: true}
		switch r.kind {
		case runtimeapi.SecurityProfile_Localhost:
			// Some clients keep the string form's prefix.
			r.name = strings.TrimPrefix(p.GetLocalhostRef(), "localhost/")
			if r.name == "" {
				return r, errdefs.InvalidArgument("%s.localhost_ref: a Localhost profile needs the name of a loaded profile", field)
			}
		case runtimeapi.SecurityProfile_RuntimeDefault, runtimeapi.SecurityProfile_Unconfined:
			if p.GetLocalhostRef() != "" {
				return r, errdefs.InvalidArgument("%s.localhost_ref %q is set but profile_type is %s, not Localhost", field, p.GetLocalhostRef(), r.kind)
			}
		default:
			return r, errdefs.InvalidArgument("%s.profile_type %v is unknown", field, r.kind)
		}
		return r, nil
	}
	switch {
	case legacy == "":
		return appArmorRequest{}, nil
	case legacy == "unconfined":
		return appArmorRequest{kind: runtimeapi.SecurityProfile_Unconfined, asked: true}, nil
	case legacy == "runtime/default":
		return appArmorRequest{kind: runtimeapi.SecurityProfile_RuntimeDefault, asked: true}, nil
	case strings.HasPrefix(legacy, "localhost/") && len(legacy) > len("localhost/"):
		return appArmorRequest{kind: runtimeapi.SecurityProfile_Localhost, name: strings.TrimPrefix(legacy, "localhost/"), asked: true}, nil
	}
	return appArmorRequest{}, errdefs.InvalidArgument("%s_profile %q is not one of runtime/default, localhost/<name>, unconfined", field, legacy)
}

// resolveAppArmor returns the profile a process runs under ("" for
// unconfined), as containerd decides it: RuntimeDefault, or no request,
// is crib's default profile unless the process is privileged; a Localhost
// profile must be loaded and applies even to privileged processes;
// Unconfined is honoured. On a node without AppArmor no request and
// Unconfined run unconfined, and any other request is refused.
func resolveAppArmor(r appArmorRequest, privileged bool, aa AppArmor, field string) (string, error) {
	if aa == nil || !aa.Enabled() {
		if !r.asked || r.kind == runtimeapi.SecurityProfile_Unconfined {
			return "", nil
		}
		what := r.name
		if what == "" {
			what = r.kind.String()
		}
		return "", errdefs.InvalidArgument("%s: AppArmor is not enabled on this node (cribd logs why at start), so profile %q cannot be applied (use Unconfined)", field, what)
	}
	if !r.asked {
		r.kind = runtimeapi.SecurityProfile_RuntimeDefault
	}
	switch r.kind {
	case runtimeapi.SecurityProfile_Unconfined:
		return "", nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if privileged {
			return "", nil
		}
		return apparmor.DefaultProfile, nil
	}
	ok, err := aa.Loaded(r.name)
	if err != nil {
		return "", errdefs.FailedPrecondition("%s.localhost_ref: AppArmor profile %q: %v", field, r.name, err)
	}
	if !ok {
		return "", errdefs.FailedPrecondition("%s.localhost_ref: AppArmor profile %q is not loaded on this node (load it with apparmor_parser)", field, r.name)
	}
	return r.name, nil
}

// containerAppArmor is the AppArmor profile of an app container.
func containerAppArmor(sc *runtimeapi.LinuxContainerSecurityContext, aa AppArmor) (string, error) {
	const field = "linux.security_context.apparmor"
	r, err := parseAppArmor(sc.GetApparmor(), sc.GetApparmorProfile(), field)
	if err != nil {
		return "", err
	}
	return resolveAppArmor(r, sc.GetPrivileged(), aa, field)
}

// SandboxAppArmor is the AppArmor profile of a pod's pause process, by the
// rules of an app container's: the pod's own request if it makes one
// (CRI's LinuxSandboxSecurityContext.apparmor), else crib's default
// profile unless the pod is privileged.
func SandboxAppArmor(sc *runtimeapi.LinuxSandboxSecurityContext, aa AppArmor) (string, error) {
	const field = "config.linux.security_context.apparmor"
	r, err := parseAppArmor(sc.GetApparmor(), "", field)
	if err != nil {
		return "", err
	}
	return resolveAppArmor(r, sc.GetPrivileged(), aa, field)
}
