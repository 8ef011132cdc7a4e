#!/usr/bin/env bash
# build-containerd.sh builds containerd, its runc shim (containerd-shim-runc-v2)
# and runc from source taken through the Go module proxy, into a cache outside
# the repo, and prints the three paths (containerd, shim, runc), one a line.
# Binaries already in the cache are reused. Only `make bench` uses them: the
# benchmark runs the same CRI workload against containerd and cribd.
#
# Build tags: containerd without btrfs (no_btrfs: no btrfs headers here, and
# the benchmark uses overlayfs); the shim with no_grpc, as containerd's own
# Makefile builds it; runc with seccomp (cgo, libseccomp-dev) and without
# libpathrs (a Rust library Debian does not package; runc falls back to its
# Go implementation).
#
# Usage: scripts/build-containerd.sh
# Env:   CRIB_TOOLS_DIR     cache root (default /var/cache/crib/tools)
#        CONTAINERD_VERSION (default v2.4.2)
#        RUNC_VERSION       (default v1.5.2, containerd v2.4.2's script/setup/runc-version)
set -euo pipefail

version=${CONTAINERD_VERSION:-v2.4.2}
runc_version=${RUNC_VERSION:-v1.5.2}
tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
out=$tools_dir/containerd-$version

log() { printf 'build-containerd: %s\n' "$*" >&2; }

print_paths() {
	printf '%s\n' "$out/containerd" "$out/containerd-shim-runc-v2" "$out/runc"
}

# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
tool_lock "$out"

if [[ -x $out/containerd && -x $out/containerd-shim-runc-v2 && -x $out/runc ]]; then
	log "reusing $out"
	print_paths
	exit 0
fi

if ! pkg-config --exists libseccomp 2>/dev/null && [[ ! -e /usr/include/seccomp.h ]]; then
	log "runc needs libseccomp-dev (make deps)"
	exit 1
fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/containerd-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

export GOFLAGS=-mod=mod CGO_ENABLED=1

# fetch downloads module@version and copies it, writable, to $work/<name>.
fetch() {
	module_copy "$1" "$2" "$work/$3" go.mod
	(cd "$work/$3" && rm -rf vendor && go mod download)
}

if [[ ! -x $out/containerd || ! -x $out/containerd-shim-runc-v2 ]]; then
	fetch github.com/containerd/containerd/v2 "$version" containerd
	pkg=github.com/containerd/containerd/v2
	ldflags="-s -w -X $pkg/version.Version=$version -X $pkg/version.Package=$pkg"
	log "building containerd $version (a few minutes cold on 2 cores)"
	(cd "$work/containerd" &&
		go build -trimpath -tags 'urfave_cli_no_docs no_btrfs' -ldflags "$ldflags" \
			-o "$out/containerd.tmp" ./cmd/containerd)
	log "building containerd-shim-runc-v2 $version"
	(cd "$work/containerd" &&
		CGO_ENABLED=0 go build -trimpath -tags 'urfave_cli_no_docs no_grpc' -ldflags "$ldflags" \
			-o "$out/containerd-shim-runc-v2.tmp" ./cmd/containerd-shim-runc-v2)
	mv "$out/containerd.tmp" "$out/containerd"
	mv "$out/containerd-shim-runc-v2.tmp" "$out/containerd-shim-runc-v2"
fi

if [[ ! -x $out/runc ]]; then
	fetch github.com/opencontainers/runc "$runc_version" runc
	log "building runc $runc_version"
	(cd "$work/runc" &&
		go build -trimpath -buildmode=pie -tags 'seccomp urfave_cli_no_docs' \
			-ldflags "-s -w -X main.version=${runc_version#v}" \
			-o "$out/runc.tmp" .)
	mv "$out/runc.tmp" "$out/runc"
fi

log "built $out"
print_paths
