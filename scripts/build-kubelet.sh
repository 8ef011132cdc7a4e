#!/usr/bin/env bash
# build-kubelet.sh builds kubelet from k8s.io/kubernetes' source, taken through
# the Go module proxy, into a cache outside the repo, and prints its path. A
# binary already in the cache is reused.
#
# The proxy serves k8s.io/kubernetes but its go.mod replaces every k8s.io/*
# staging module with ./staging/src/k8s.io/*, which the module zip does not
# hold. The build points those replaces at the published k8s.io/* v0.<minor>.<patch>
# modules instead (same minor and patch as the kubernetes version).
#
# Usage: scripts/build-kubelet.sh
# Env:   CRIB_TOOLS_DIR   cache root (default /var/cache/crib/tools)
#        KUBELET_VERSION  (default v1.37.2, the version of crib's cri-api)
set -euo pipefail

version=${KUBELET_VERSION:-v1.37.2}
tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
out=$tools_dir/kubelet-$version

log() { printf 'build-kubelet: %s\n' "$*" >&2; }

# One build at a time per version: a parallel run waits, then reuses.
mkdir -p "$tools_dir"
exec {lockfd}>"$out.lock"
flock "$lockfd"

if [[ -x $out/kubelet ]]; then
	log "reusing $out/kubelet"
	printf '%s\n' "$out/kubelet"
	exit 0
fi

if [[ ! $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
	log "KUBELET_VERSION must look like v1.37.2, got $version"
	exit 1
fi
minor=${BASH_REMATCH[1]}
staging_version=v0.$minor.${BASH_REMATCH[2]}

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/kubelet-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "downloading k8s.io/kubernetes@$version"
moddir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ ! -d $moddir/cmd/kubelet ]]; then
	log "go mod download gave no module dir ($moddir)"
	exit 1
fi
cp -r "$moddir" "$work/src"
chmod -R u+w "$work/src"
cd "$work/src"

# Rewrite `k8s.io/foo => ./staging/src/k8s.io/foo` (one-line or inside a
# replace block) to `k8s.io/foo => k8s.io/foo $staging_version`.
log "pointing staging replaces at k8s.io/* $staging_version"
sed -i -E "s#^([[:space:]]*(replace[[:space:]]+)?)(k8s\.io/[^[:space:]]+)[[:space:]]+=>[[:space:]]+\./staging/src/k8s\.io/[^[:space:]]+#\1\3 => \3 $staging_version#" go.mod
if grep -q '\./staging/' go.mod; then
	log "go.mod still points at ./staging:"
	grep '\./staging/' go.mod >&2
	exit 1
fi
rm -rf vendor go.work go.work.sum

export GOFLAGS=-mod=mod CGO_ENABLED=1
log "downloading dependencies"
go mod download
log "building kubelet (about 7 minutes cold on 2 cores)"
go build -trimpath \
	-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
	-o "$out/kubelet.tmp" ./cmd/kubelet
mv "$out/kubelet.tmp" "$out/kubelet"
log "built $out/kubelet"
printf '%s\n' "$out/kubelet"
