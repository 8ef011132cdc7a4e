#!/usr/bin/env bash
# build-coredns.sh builds CoreDNS from github.com/coredns/coredns's source,
# taken through the Go module proxy, into a cache outside the repo, and prints
# its path. A binary already in the cache is reused. tests/images/build.sh
# puts it into the coredns test image, which tests/cluster runs as cluster
# DNS.
#
# Built as CoreDNS's Makefile builds it: static (CGO_ENABLED=0), tag
# grpcnotrace, stripped; but with only the plugins a kubeadm Corefile names
# (errors, health, ready, kubernetes, prometheus, forward, cache, loop,
# reload, loadbalance) and log, the way CoreDNS documents trimming its
# plugin.cfg: core/plugin/zplugin.go, the file `go generate` writes from
# plugin.cfg, is replaced by that list. The default set's other plugins
# bring cloud SDKs, etcd and dnstap: they were most of a cold build.
#
# Usage: scripts/build-coredns.sh
# Env:   CRIB_TOOLS_DIR   cache root (default /var/cache/crib/tools)
#        COREDNS_VERSION  (default v1.15.0)
set -euo pipefail

version=${COREDNS_VERSION:-v1.15.0}
tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
# -kube: the plugin set above, not upstream's default one.
out=$tools_dir/coredns-$version-kube

log() { printf 'build-coredns: %s\n' "$*" >&2; }

# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
tool_lock "$out"

if [[ -x $out/coredns ]]; then
	log "reusing $out/coredns"
	printf '%s\n' "$out/coredns"
	exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/coredns-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

module_copy github.com/coredns/coredns "$version" "$work/src" core/plugin/zplugin.go
cd "$work/src"
rm -rf vendor
cat >core/plugin/zplugin.go <<'GO'
// Written by crib's scripts/build-coredns.sh: a kubeadm Corefile's plugins.

package plugin

import (
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)
GO

# The module's .go-version asks for a newer Go than go.mod's go line; the
# Makefile's GOTOOLCHAIN is not used: go.mod's go 1.26.0 builds here.
export GOFLAGS=-mod=mod CGO_ENABLED=0
ldflags="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$version"
log "building coredns $version (a kubeadm Corefile's plugins)"
go build -trimpath -tags grpcnotrace -ldflags "$ldflags" -o "$out/coredns.tmp" .
"$out/coredns.tmp" -version >/dev/null 2>&1
mv "$out/coredns.tmp" "$out/coredns"

log "built $out/coredns"
printf '%s\n' "$out/coredns"
