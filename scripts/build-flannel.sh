#!/usr/bin/env bash
# build-flannel.sh builds flanneld from github.com/flannel-io/flannel's source,
# taken through the Go module proxy, into a cache outside the repo, and prints
# its path. A binary already in the cache is reused. tests/cluster runs it on
# the flannel node (kubelet on containerd), beside crib nodes.
#
# Built as flannel's Makefile builds it on amd64: CGO on (the UDP backend is
# cgo), linked static, version stamped into pkg/version; but without the
# tencentvpc backend (a Tencent Cloud route-table backend): the proxy
# refuses the tencentcloud-sdk-go/tencentcloud/vpc v1.3.188 zip its go.mod
# pins (403), so main.go's blank import of it is dropped. vxlan, host-gw,
# udp, ipip, ipsec, wireguard, alloc and extension stay.
#
# Running flanneld outside a pod with the kube subnet manager (read from
# v0.28.10's main.go, pkg/subnet/kube/kube.go, pkg/subnet/subnet.go and
# pkg/backend/vxlan), as root in the node's network namespace:
#
#   NODE_NAME=<node name> flanneld \
#     --kube-subnet-mgr \
#     --kubeconfig-file=<kubeconfig> \
#     --iface=<underlay interface name or IP> --public-ip=<underlay IP> \
#     --net-config-path=<dir>/net-conf.json \
#     --subnet-file=<dir>/subnet.env
#
# - NODE_NAME (env) names the Node to annotate and whose spec.podCIDR is this
#   node's subnet; without it flanneld wants POD_NAME/POD_NAMESPACE (a pod).
#   --kube-api-url overrides the kubeconfig's server. Every flag can also be
#   given as env FLANNELD_<FLAG> (FLANNELD_IFACE, ...).
# - The Node must exist and have spec.podCIDR (controller-manager
#   --allocate-node-cidrs) before flanneld starts: flannel allocates none,
#   and exits 1 ("pod cidr not assigned") instead of waiting.
# - --net-config-path (default /etc/kube-flannel/net-conf.json) is read
#   only in kube mode, e.g.
#     {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}
#   Network must contain the Node's podCIDR (the controller-manager's
#   --cluster-cidr). "EnableNFTables": true switches its masquerade and
#   FORWARD rules from iptables to nftables.
# - br_netfilter: in iptables mode (the default) flanneld exits 1 when
#   /proc/sys/net/bridge/bridge-nf-call-iptables is missing in its network
#   namespace (scripts/install-deps.sh loads the module).
# - --subnet-file (default /run/flannel/subnet.env) is written once the
#   lease is held, the readiness signal to wait for:
#     FLANNEL_NETWORK=10.244.0.0/16
#     FLANNEL_SUBNET=10.244.3.1/24   (the podCIDR's first address: bridge gateway)
#     FLANNEL_MTU=1450               (underlay MTU - 50)
#     FLANNEL_IPMASQ=false
#   A bridge CNI config for that node: bridge (e.g. cni0, isGateway, mtu
#   FLANNEL_MTU, ipMasq false) + host-local on the podCIDR, gateway
#   FLANNEL_SUBNET's address. (flannel's own "flannel" CNI plugin, which
#   reads this file, is a separate repository Debian does not package.)
# - --ip-masq defaults to false, --iptables-forward-rules to true (ACCEPT
#   for the Network in FORWARD), --healthz-port to 0 (off).
# - VXLAN defaults: VNI 1, device flannel.<VNI> = flannel.1 with MTU underlay
#   - 50 and the podCIDR's network address as a /32 (10.244.3.0/32), UDP
#   port 0 = the kernel's default 8472 (not IANA's 4789), learning, GBP and
#   DirectRouting off; "VNI" and "Port" in net-conf's Backend change them.
#   Per peer: route <podCIDR> via <podCIDR's .0> dev flannel.1 onlink, a
#   permanent neighbour <.0> -> VtepMAC and an FDB entry VtepMAC -> public IP.
# - It publishes its VTEP with a strategic merge patch of nodes/status:
#   flannel.alpha.coreos.com/kube-subnet-manager "true", backend-type
#   "vxlan", backend-data {"VNI":1,"VtepMAC":"..."}, public-ip; honours
#   public-ip-overwrite; sets the Node's NetworkUnavailable condition false.
#   It takes as peers only Nodes whose kube-subnet-manager annotation is
#   "true" and whose backend-type is "vxlan".
#
# Usage: scripts/build-flannel.sh
# Env:   CRIB_TOOLS_DIR   cache root (default /var/cache/crib/tools)
#        FLANNEL_VERSION  (default v0.28.10)
set -euo pipefail

version=${FLANNEL_VERSION:-v0.28.10}
tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
out=$tools_dir/flannel-$version

log() { printf 'build-flannel: %s\n' "$*" >&2; }

# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
tool_lock "$out"

if [[ -x $out/flanneld ]]; then
	log "reusing $out/flanneld"
	printf '%s\n' "$out/flanneld"
	exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/flannel-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

module_copy github.com/flannel-io/flannel "$version" "$work/src" main.go
cd "$work/src"
rm -rf vendor
tencent='_ "github.com/flannel-io/flannel/pkg/backend/tencentvpc"'
if ! grep -qF "$tencent" main.go; then
	log "main.go no longer imports the tencentvpc backend: check the build"
	exit 1
fi
sed -i "\#$tencent#d" main.go

export GOFLAGS=-mod=mod CGO_ENABLED=1
ldflags="-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$version -extldflags -static"
log "building flanneld $version (about 7 minutes cold on a loaded 2-core machine)"
go build -trimpath -ldflags "$ldflags" -o "$out/flanneld.tmp" .
"$out/flanneld.tmp" --version >/dev/null 2>&1
mv "$out/flanneld.tmp" "$out/flanneld"

log "built $out/flanneld"
printf '%s\n' "$out/flanneld"
