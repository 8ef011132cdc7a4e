package ocispec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Syscalls the RuntimeDefault profile refuses to every container: they
// reach state the whole machine shares (kernel modules, kexec, clocks,
// keyrings, accounting, swap, reboot, obsolete interfaces).
var deniedSyscalls = []string{
	"acct", "add_key", "clock_adjtime", "clock_settime", "create_module", "delete_module",
	"finit_module", "get_kernel_syms", "init_module", "ioperm", "iopl", "kexec_file_load",
	"kexec_load", "keyctl", "lookup_dcookie", "nfsservctl", "query_module", "quotactl",
	"reboot", "request_key", "settimeofday", "stime", "swapoff", "swapon", "sysfs",
	"_sysctl", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
}

// Syscalls refused unless the container holds the capability that governs
// them anyway (as Docker's and containerd's default profiles do).
var capGatedSyscalls = map[string][]string{
	"CAP_SYS_ADMIN": {
		"bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "mount",
		"mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "perf_event_open",
		"pivot_root", "setdomainname", "sethostname", "setns", "umount", "umount2", "unshare",
	},
	"CAP_SYS_PTRACE": {"kcmp", "process_vm_readv", "process_vm_writev", "ptrace"},
	"CAP_SYS_NICE":   {"get_mempolicy", "mbind", "move_pages", "set_mempolicy"},
	"CAP_SYSLOG":     {"syslog"},
	"CAP_SYS_CHROOT": {"chroot"},
}

// namespaceFlags are the clone flags that make new namespaces.
var namespaceFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP, unix.CLONE_NEWTIME,
}

// DefaultSeccomp is crib's RuntimeDefault profile for a container with the
// given capabilities: every syscall is allowed but those above, which fail
// with EPERM. Without CAP_SYS_ADMIN, clone with namespace flags fails too,
// and clone3 (whose flags a filter cannot read) fails with ENOSYS so that
// libc falls back to clone.
func DefaultSeccomp(caps []string) *specs.LinuxSeccomp {
	has := map[string]bool{}
	for _, c := range caps {
		has[c] = true
	}
	eperm := uint(unix.EPERM)
	denied := append([]string(nil), deniedSyscalls...)
	for capName, calls := range capGatedSyscalls {
		if !has[capName] {
			denied = append(denied, calls...)
		}
	}
	prof := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: denied, Action: specs.ActErrno, ErrnoRet: &eperm},
		},
	}
	if !has["CAP_SYS_ADMIN"] {
		enosys := uint(unix.ENOSYS)
		prof.Syscalls = append(prof.Syscalls, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
		for _, f := range namespaceFlags {
			prof.Syscalls = append(prof.Syscalls, specs.LinuxSyscall{
				Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: f, ValueTwo: f, Op: specs.OpMaskedEqual}},
			})
		}
	}
	return prof
}
