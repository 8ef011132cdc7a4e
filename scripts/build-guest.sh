#!/usr/bin/env bash
# build-guest.sh builds the VM lane's node: a Debian 12 guest with cgroup v2
# (unified), systemd as PID 1 and AppArmor, from Debian's packages
# (mmdebstrap --variant=minbase), as a raw ext4 image plus its kernel and
# initrd for direct kernel boot. It prints the guest's directory:
#
#   ${CRIB_TOOLS_DIR:-/var/cache/crib/tools}/guest-<hash>/
#     root.img     4 GiB sparse ext4, the root file system (/dev/vda)
#     vmlinuz      kernel, initrd.img its initramfs
#     cmdline      the kernel command line tests/node/run.sh boots with
#
# The hash covers this script (the package list, the guest's files and the
# command line are all in it), so editing it builds a new guest and an
# unchanged script returns the cached one at once.
#
# The guest mounts the 9p share with mount tag "crib" at /mnt/crib, and
# crib-node-run.service runs /mnt/crib/run.sh once the system is up,
# writing its stdout, stderr and exit status to /mnt/crib/out/{stdout,
# stderr,rc}, then powers off. tests/node/run.sh drives it.
#
# Usage: scripts/build-guest.sh     (as root; needs mmdebstrap, e2fsprogs;
#                                    about 2-5 minutes and 750 MB the first time)
set -euo pipefail

tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
log() { printf 'build-guest: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
	log "must run as root"
	exit 1
fi

hash=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
out=$tools_dir/guest-$hash

mkdir -p "$tools_dir"
exec {lockfd}>"$out.lock"
flock "$lockfd"

if [[ -f $out/root.img && -f $out/vmlinuz && -f $out/initrd.img && -f $out/cmdline ]]; then
	log "up to date in $out"
	printf '%s\n' "$out"
	exit 0
fi

for tool in mmdebstrap mke2fs; do
	command -v "$tool" >/dev/null || { log "missing $tool (scripts/install-deps.sh installs it)"; exit 1; }
done

packages=(
	# the node: systemd as PID 1 with its D-Bus (the systemd cgroup driver
	# talks to it), udev and modules for the virtio devices
	systemd systemd-sysv dbus udev kmod linux-image-amd64 initramfs-tools
	# pod networking: the CNI plugins (bridge, host-local, portmap,
	# loopback) and the iptables they call
	iproute2 iptables nftables containernetworking-plugins conntrack
	# cribd's seccomp, AppArmor and its tools (apparmor_parser, aa-status)
	libseccomp2 apparmor apparmor-utils
	# test tools: busybox for scripts; the registry that serves the
	# test images (tests/images) inside the guest; jq and curl for kubelet's
	# read-only endpoints
	busybox-static procps util-linux ca-certificates docker-registry jq curl
	# mount and kubelet's volume code
	mount e2fsprogs
	# external OCI runtimes for the runtime handler test (runtime.handlers
	# in crib.toml): crun cannot run on the CI host's hybrid cgroups
	crun runc
	# CheckpointContainer (tests/node TestCheckpointContainer): Debian 12's
	# CRIU 3.17 works on the guest's kernel, not on the CI host's 6.18
	criu
)

cmdline="console=ttyS0 root=/dev/vda rw rootfstype=ext4 psi=1 apparmor=1 security=apparmor systemd.unified_cgroup_hierarchy=1 systemd.show_status=error loglevel=4 panic=-1"

work=$(mktemp -d "$tools_dir/.guest-build-XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

# setup_guest configures the unpacked root file system ($1).
setup_guest() {
	local r=$1
	echo crib-node >"$r/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 crib-node\n::1 localhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
	# A fixed machine ID: the boot is not a first boot (no
	# systemd-firstboot, no preset run) and kubelet finds one.
	echo 6372696230766d6c616e650000000001 >"$r/etc/machine-id"
	cat >"$r/etc/fstab" <<-'EOF'
		/dev/vda  /          ext4  rw,errors=remount-ro                                   0 1
		crib      /mnt/crib  9p    trans=virtio,version=9p2000.L,msize=512000,nofail  0 0
	EOF
	mkdir -p "$r/mnt/crib"
	printf '9p\n9pnet_virtio\noverlay\nbr_netfilter\nveth\nbridge\n' >"$r/etc/modules-load.d/crib.conf"
	# Root logs in on the console without a password (debugging by hand).
	chroot "$r" passwd -d root >/dev/null

	cat >"$r/etc/systemd/system/crib-node-run.service" <<-'EOF'
		[Unit]
		Description=crib VM lane: run /mnt/crib/run.sh, record its result, power off
		Requires=mnt-crib.mount
		After=mnt-crib.mount multi-user.target dbus.service systemd-modules-load.service apparmor.service
		# The script's result is all the host needs: power off when it ends,
		# whatever happened, so the host never waits for its timeout.
		OnFailure=poweroff.target
		OnSuccess=poweroff.target

		[Service]
		Type=oneshot
		Environment=PATH=/mnt/crib/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
		WorkingDirectory=/mnt/crib
		ExecStart=/bin/sh -c 'mkdir -p /mnt/crib/out; rc=0; /mnt/crib/run.sh >/mnt/crib/out/stdout 2>/mnt/crib/out/stderr </dev/null || rc=$?; echo $rc >/mnt/crib/out/rc; sync'
		StandardOutput=journal+console
		StandardError=journal+console
		TimeoutStartSec=infinity

		[Install]
		WantedBy=multi-user.target
	EOF
	# multi-user.target must not wait for the runner (it is ordered after it).
	mkdir -p "$r/etc/systemd/system/default.target.wants"
	ln -sf /etc/systemd/system/crib-node-run.service "$r/etc/systemd/system/default.target.wants/crib-node-run.service"
	rm -f "$r/etc/systemd/system/multi-user.target.wants/crib-node-run.service"

	# Quiet, quick boots: no logins, timers or services the lane does not
	# use. The registry runs per test on loopback, not as a service.
	local unit
	for unit in getty@tty1.service serial-getty@ttyS0.service docker-registry.service \
		apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
		fstrim.timer man-db.timer systemd-timesyncd.service; do
		ln -sf /dev/null "$r/etc/systemd/system/$unit"
	done
	# journald keeps the journal in memory: the root image is a snapshot.
	mkdir -p "$r/etc/systemd/journald.conf.d"
	printf '[Journal]\nStorage=volatile\n' >"$r/etc/systemd/journald.conf.d/crib.conf"
}

log "mmdebstrap bookworm (${#packages[@]} packages; a few minutes)"
mmdebstrap --variant=minbase --mode=root --format=directory \
	--include="$(IFS=,; echo "${packages[*]}")" \
	--aptopt='Acquire::Retries "3"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
	bookworm "$rootfs" \
	"deb http://deb.debian.org/debian bookworm main" \
	"deb http://deb.debian.org/debian bookworm-updates main" \
	"deb http://deb.debian.org/debian-security bookworm-security main" >&2

setup_guest "$rootfs"

mkdir -p "$work/out"
kernel=$(find "$rootfs/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)
initrd=$(find "$rootfs/boot" -maxdepth 1 -name 'initrd.img-*' | sort -V | tail -n1)
if [[ -z $kernel || -z $initrd ]]; then
	log "no kernel or initrd in the guest's /boot"
	exit 1
fi
cp "$kernel" "$work/out/vmlinuz"
cp "$initrd" "$work/out/initrd.img"
printf '%s\n' "$cmdline" >"$work/out/cmdline"

log "mke2fs -d: 4 GiB sparse ext4 ($(du -sh "$rootfs" | cut -f1) used)"
truncate -s 4G "$work/out/root.img"
mke2fs -q -t ext4 -L crib-root -E root_owner=0:0 -d "$rootfs" -F "$work/out/root.img"

rm -rf "$out"
mv "$work/out" "$out"
log "built $out"
printf '%s\n' "$out"
