#!/usr/bin/env bash
# build-cri-tools.sh builds crictl and critest from cri-tools' source, taken
# through the Go module proxy, into a cache outside the repo, and prints their
# paths. Binaries already in the cache are reused.
#
# Usage: scripts/build-cri-tools.sh
# Env:   CRIB_TOOLS_DIR   cache root (default /var/cache/crib/tools)
#        CRI_TOOLS_VERSION (default v1.36.0)
set -euo pipefail

version=${CRI_TOOLS_VERSION:-v1.36.0}
tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
out=$tools_dir/cri-tools-$version

log() { printf 'build-cri-tools: %s\n' "$*" >&2; }

# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
tool_lock "$out"

if [[ -x $out/crictl && -x $out/critest ]]; then
	log "reusing $out"
	printf '%s\n' "$out/crictl" "$out/critest"
	exit 0
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/cri-tools-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

module_copy sigs.k8s.io/cri-tools "$version" "$work/src" cmd/crictl
cd "$work/src"

ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version=$version"
export CGO_ENABLED=0 GOFLAGS=-mod=vendor
if [[ ! -d vendor ]]; then
	GOFLAGS=-mod=mod
fi

log "building crictl"
go build -trimpath -ldflags "$ldflags" -o "$out/crictl.tmp" ./cmd/crictl
mv "$out/crictl.tmp" "$out/crictl"

log "building critest"
go test -c -trimpath -ldflags "$ldflags" -o "$out/critest.tmp" ./cmd/critest
mv "$out/critest.tmp" "$out/critest"

printf '%s\n' "$out/crictl" "$out/critest"
