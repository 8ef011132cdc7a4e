package ocispec

import (
	"fmt"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	imgspec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/crib-runtime/crib/api/errdefs"
)

// defaultPath is PATH when neither the image nor the request sets one.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func buildProcess(in Input) (*specs.Process, error) {
	cfg := in.Config.cri
	if err := checkProcessStrings(cfg); err != nil {
		return nil, err
	}
	args, err := processArgs(cfg.GetCommand(), cfg.GetArgs(), in.Image)
	if err != nil {
		return nil, err
	}
	cwd := cfg.GetWorkingDir()
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !strings.HasPrefix(cwd, "/") {
		return nil, errdefs.InvalidArgument("working_dir %q is not an absolute path", cwd)
	}
	usr, err := resolveUser(in)
	if err != nil {
		return nil, err
	}
	return &specs.Process{
		Terminal: cfg.GetTty(),
		Args:     args,
		Env:      mergeEnv(in.Image.Env, cfg.GetEnvs()),
		Cwd:      cwd,
		User:     usr,
	}, nil
}

// checkProcessStrings refuses a NUL byte in what reaches execve and
// chdir as C strings (command, args, env, working_dir): the kernel would
// cut the string there or refuse it, and libcontainer's error would come
// only at start. An env key must not be empty or hold '='.
func checkProcessStrings(cfg *runtimeapi.ContainerConfig) error {
	for i, s := range cfg.GetCommand() {
		if err := noNUL(fmt.Sprintf("command[%d]", i), s); err != nil {
			return err
		}
	}
	for i, s := range cfg.GetArgs() {
		if err := noNUL(fmt.Sprintf("args[%d]", i), s); err != nil {
			return err
		}
	}
	for i, kv := range cfg.GetEnvs() {
		if kv.GetKey() == "" || strings.Contains(kv.GetKey(), "=") {
			return errdefs.InvalidArgument("envs[%d].key %q is empty or holds '='", i, clip(kv.GetKey()))
		}
		if err := noNUL(fmt.Sprintf("envs[%d].key", i), kv.GetKey()); err != nil {
			return err
		}
		if err := noNUL(fmt.Sprintf("envs[%d].value", i), string(kv.GetValue())); err != nil {
			return err
		}
	}
	return noNUL("working_dir", cfg.GetWorkingDir())
}

// noNUL refuses a string holding a NUL byte, naming field.
func noNUL(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errdefs.InvalidArgument("%s %q holds a NUL byte", field, clip(s))
	}
	return nil
}

// processArgs merges the CRI command and args with the image's ENTRYPOINT
// and CMD by Kubernetes' rules: command replaces ENTRYPOINT and drops CMD;
// args alone replace CMD; neither runs ENTRYPOINT + CMD.
func processArgs(command, args []string, img imgspec.ImageConfig) ([]string, error) {
	var out []string
	switch {
	case len(command) > 0:
		out = append(append(out, command...), args...)
	case len(args) > 0:
		out = append(append(out, img.Entrypoint...), args...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	if len(out) == 0 {
		return nil, errdefs.InvalidArgument("command: none given and the image has no ENTRYPOINT or CMD")
	}
	return out, nil
}

// mergeEnv returns the image's environment overlaid with the request's: a
// key set by both keeps its first position and takes the request's value.
func mergeEnv(image []string, req []*runtimeapi.KeyValue) []string {
	out := make([]string, 0, len(image)+len(req)+1)
	index := map[string]int{}
	set := func(kv string) {
		key, _, _ := strings.Cut(kv, "=")
		if i, ok := index[key]; ok {
			out[i] = kv
			return
		}
		index[key] = len(out)
		out = append(out, kv)
	}
	for _, kv := range image {
		set(kv)
	}
	for _, kv := range req {
		set(kv.GetKey() + "=" + string(kv.GetValue()))
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, defaultPath)
	}
	return out
}

// resolveUser decides the process's uid, gid and groups: run_as_user or
// run_as_username, else the image's USER; run_as_group, else the user's
// primary group; plus the user's groups from the image's /etc/group (unless
// the Strict policy says only the requested ones) and supplemental_groups.
func resolveUser(in Input) (specs.User, error) {
	sc := in.Config.cri.GetLinux().GetSecurityContext()
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return specs.User{}, errdefs.InvalidArgument("linux.security_context.run_as_group needs run_as_user or run_as_username")
	}
	spec := in.Image.User
	switch {
	case sc.GetRunAsUser() != nil:
		spec = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	case sc.GetRunAsUsername() != "":
		spec = sc.GetRunAsUsername()
	default:
		if spec == "" {
			spec = "0"
		}
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if sc.GetRunAsGroup() != nil {
		groupPart, hasGroup = strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10), true
	}
	lookup := userPart
	if hasGroup {
		lookup += ":" + groupPart
	}
	passwd, err := securejoin.SecureJoin(in.Rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, fmt.Errorf("resolve user %q: %w", spec, err)
	}
	group, err := securejoin.SecureJoin(in.Rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, fmt.Errorf("resolve user %q: %w", spec, err)
	}
	field := "image USER"
	if sc.GetRunAsUsername() != "" {
		field = "linux.security_context.run_as_username"
	}
	// The implicit form (no group) gives the user's groups from /etc/group;
	// the explicit form only the named group.
	eu, err := user.GetExecUserPath(userPart, &user.ExecUser{}, passwd, group)
	if err != nil {
		return specs.User{}, errdefs.InvalidArgument("%s %q: %v", field, spec, err)
	}
	gid := eu.Gid
	if hasGroup {
		explicit, err := user.GetExecUserPath(lookup, &user.ExecUser{}, passwd, group)
		if err != nil {
			return specs.User{}, errdefs.InvalidArgument("%s %q: %v", field, lookup, err)
		}
		gid = explicit.Gid
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(gid), AdditionalGids: []uint32{uint32(gid)}}
	if sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		// Merge (the default): the image's groups for the user join in.
		for _, g := range eu.Sgids {
			u.AdditionalGids = appendUnique(u.AdditionalGids, uint32(g))
		}
	}
	for _, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > 1<<32-1 {
			return specs.User{}, errdefs.InvalidArgument("linux.security_context.supplemental_groups: %d is out of range", g)
		}
		u.AdditionalGids = appendUnique(u.AdditionalGids, uint32(g))
	}
	return u, nil
}

func appendUnique(s []uint32, v uint32) []uint32 {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
