#!/usr/bin/env bash
# run.sh runs a script as root inside the VM lane's guest (a Debian 12 node
# with systemd, cgroup v2 and AppArmor: scripts/build-guest.sh) and gives
# back its output and exit status.
#
# Usage: tests/node/run.sh SCRIPT [SHARE_DIR]
#
# The share (SHARE_DIR, or a temp dir removed afterwards) is mounted in the
# guest at /mnt/crib over 9p. run.sh puts into it:
#   run.sh        SCRIPT, which the guest runs from /mnt/crib as its working dir
#   bin/          cribd crib-shim crib-pause crib-vxlan from $CRIB_BIN_DIR,
#                 crictl and critest (cri-tools v1.36.0), kubelet v1.37.2 (the
#                 multi-call binary of scripts/build-kube.sh, named kubelet)
#                 when built; /mnt/crib/bin is first in the script's PATH
#   images/registry  the test images' registry storage (tests/images/build.sh),
#                 when built: serve it with docker-registry inside the guest
#   out/          stdout, stderr, rc (written by the guest), console.log
# Anything else already in SHARE_DIR is left as it is, so a caller can add
# files for the script. The guest's root disk is a snapshot: every run starts
# from the same clean image, and only the share keeps what the script writes.
#
# Env: CRIB_BIN_DIR      crib's binaries (default: this checkout's bin/)
#      CRIB_TOOLS_DIR    tool cache (default /var/cache/crib/tools)
#      CRIB_NODE_TIMEOUT seconds for the whole run, boot included (default 900)
#      CRIB_NODE_SMP, CRIB_NODE_MEM  vCPUs (default 2) and MiB (default 3072)
#      CRIB_NODE_KEEP=1  keep the temp share dir (its path is printed)
#
# QEMU runs with software emulation (TCG): /dev/kvm on these machines is a
# nested hypervisor on which the guest kernel hangs. One VM runs at a time
# per machine (a lock in the tool cache); a second run waits for it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
bin_dir=${CRIB_BIN_DIR:-$repo/bin}
timeout_s=${CRIB_NODE_TIMEOUT:-900}

log() { printf 'node: %s\n' "$*" >&2; }

if [[ $# -lt 1 || $# -gt 2 || ! -f $1 ]]; then
	echo "usage: $0 SCRIPT [SHARE_DIR]   (SCRIPT must be a file)" >&2
	exit 2
fi
script=$1

command -v qemu-system-x86_64 >/dev/null || { log "missing qemu-system-x86_64 (scripts/install-deps.sh installs it)"; exit 1; }

guest=$("$repo/scripts/build-guest.sh")

if [[ $# -eq 2 ]]; then
	share=$2
	mkdir -p "$share"
	share=$(cd "$share" && pwd)
else
	share=$(mktemp -d /tmp/crib-node-XXXXXX)
	if [[ ${CRIB_NODE_KEEP:-} == 1 ]]; then
		log "share dir: $share (kept)"
	else
		trap 'rm -rf "$share"' EXIT
	fi
fi

# link_or_copy puts file $1 at $2: a hard link when it can (no copy of
# large binaries), else a copy.
link_or_copy() {
	rm -f "$2"
	ln "$1" "$2" 2>/dev/null || cp "$1" "$2"
}

mkdir -p "$share/bin"
for b in cribd crib-shim crib-pause crib-vxlan; do
	if [[ ! -x $bin_dir/$b ]]; then
		log "missing $bin_dir/$b (make build BIN=$bin_dir)"
		exit 1
	fi
	link_or_copy "$bin_dir/$b" "$share/bin/$b"
done
# kube-v1.37.2/kubelet is a symlink to the multi-call Kubernetes binary
# (scripts/build-kube.sh): the share gets that binary itself (readlink -f: a
# hard link of the symlink would dangle in the guest) under the name
# kubelet, which is the name it dispatches on.
for t in cri-tools-v1.36.0/crictl cri-tools-v1.36.0/critest kube-v1.37.2/kubelet; do
	if [[ -x $tools_dir/$t ]]; then
		link_or_copy "$(readlink -f "$tools_dir/$t")" "$share/bin/$(basename "$t")"
	fi
done
if [[ -d $tools_dir/images/registry && ! -d $share/images/registry ]]; then
	mkdir -p "$share/images"
	cp -al "$tools_dir/images/registry" "$share/images/registry" 2>/dev/null ||
		cp -a "$tools_dir/images/registry" "$share/images/registry"
fi
install -m 0755 "$script" "$share/run.sh"
rm -rf "$share/out"
mkdir -p "$share/out"

# One VM at a time on this machine: TCG takes both cores.
exec {lockfd}>"$tools_dir/node-vm.lock"
if ! flock -n "$lockfd"; then
	log "another guest is running; waiting for it"
	flock "$lockfd"
fi

log "booting $guest (TCG, ${CRIB_NODE_SMP:-2} vCPUs; timeout ${timeout_s}s)"
start=$SECONDS
set +e
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -smp "${CRIB_NODE_SMP:-2}" -m "${CRIB_NODE_MEM:-3072}" \
	-nodefaults -no-user-config -display none -no-reboot \
	-kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" -append "$(cat "$guest/cmdline")" \
	-drive "file=$guest/root.img,format=raw,if=virtio,snapshot=on" \
	-virtfs "local,path=$share,mount_tag=crib,security_model=none,id=crib" \
	-device virtio-rng-pci \
	-serial "file:$share/out/console.log" \
	</dev/null >"$share/out/qemu.log" 2>&1
qemu_rc=$?
set -e
log "guest ran $((SECONDS - start))s"

show() {
	local f=$share/out/$1
	if [[ -s $f ]]; then
		printf -- '--- %s ---\n' "$1"
		cat "$f"
	fi
}

if [[ ! -f $share/out/rc ]]; then
	if [[ $qemu_rc -eq 124 || $qemu_rc -eq 137 ]]; then
		log "timed out after ${timeout_s}s without the script's exit status"
	else
		log "qemu exited ($qemu_rc) without the script's exit status"
	fi
	show stdout
	show stderr
	show qemu.log
	printf -- '--- console.log (last 40 lines) ---\n'
	tail -n 40 "$share/out/console.log" 2>/dev/null || true
	exit 125
fi
show stdout
show stderr >&2
rc=$(cat "$share/out/rc")
log "script exited $rc"
exit "$rc"
