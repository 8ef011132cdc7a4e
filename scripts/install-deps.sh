#!/usr/bin/env bash
# install-deps.sh installs the Debian 12 packages crib needs to build and test,
# and checks that iptables works on this kernel. It is idempotent: when every
# package is already installed it neither updates nor installs anything.
#
# Usage: scripts/install-deps.sh        (as root)
set -euo pipefail

packages=(
	# build
	gcc make libc6-dev pkg-config libseccomp-dev
	# pod networking (CNI plugins land in /usr/lib/cni)
	containernetworking-plugins iptables iproute2
	# test tools; busybox is the dynamic one, not busybox-static
	busybox procps util-linux jq curl python3
	# network tests: captures on the test underlay; nft to drop tables
	# the CNI plugins leave
	tcpdump nftables
	# the cluster test's flannel node: modprobe for br_netfilter, which
	# flanneld (iptables mode) refuses to start without
	kmod
	# image tests: a local registry, copying and unpacking images
	docker-registry skopeo umoci
	# the VM lane (scripts/build-guest.sh, tests/node/run.sh): the guest's
	# root file system from Debian's packages, its ext4 image, and QEMU
	mmdebstrap e2fsprogs qemu-system-x86
	# runtime handlers: external OCI runtimes ([runtime.handlers.NAME])
	# that the handler tests drive through their runc-compatible CLI
	runc crun
)

log() { printf 'install-deps: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
	log "must run as root"
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [[ $status != "install ok installed" ]]; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} > 0)); then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Wait for another apt run (an unattended upgrade, a parallel install)
	# instead of failing on the dpkg lock.
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	log "all ${#packages[@]} packages present"
fi

# docker-registry's package starts no service without an init system; the
# image tests run their own registry on loopback.

# iptables: the bridge and portmap CNI plugins call the iptables in $PATH.
# Debian 12 defaults to the nf_tables backend; fall back to legacy when the
# kernel lacks nf_tables.
iptables_works() {
	local bin=$1 chain=CRIB-DEPS-CHECK-$$
	"$bin" -w -t nat -N "$chain" 2>/dev/null || return 1
	"$bin" -w -t nat -X "$chain" 2>/dev/null || return 1
	"$bin" -w -t filter -N "$chain" 2>/dev/null || return 1
	"$bin" -w -t filter -X "$chain" 2>/dev/null || return 1
}

current=$(readlink -f "$(command -v iptables)")
if iptables_works iptables; then
	log "iptables works: $(iptables --version) via $current"
elif iptables_works iptables-legacy; then
	log "iptables ($current) fails here; switching to iptables-legacy"
	update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
	update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null || true
	log "iptables works: $(iptables --version)"
else
	log "neither iptables-nft nor iptables-legacy can create a chain on this kernel"
	exit 1
fi

# br_netfilter: flanneld v0.28 (tests/cluster's flannel node) exits when
# /proc/sys/net/bridge/bridge-nf-call-iptables is missing, and kube-proxy
# needs bridged pod traffic to cross iptables. Best effort: a kernel with it
# built in, or a container that cannot load modules, is left as it is.
if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
	if modprobe br_netfilter 2>/dev/null; then
		log "loaded br_netfilter"
	else
		log "warning: br_netfilter not loaded and modprobe failed; the cluster test's flannel node needs it"
	fi
fi

# The CNI plugins the tests use.
for plugin in bridge host-local portmap loopback; do
	if [[ ! -x /usr/lib/cni/$plugin ]]; then
		log "missing CNI plugin /usr/lib/cni/$plugin"
		exit 1
	fi
done
