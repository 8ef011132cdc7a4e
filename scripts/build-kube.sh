#!/usr/bin/env bash
# build-kube.sh builds the Kubernetes control plane and node binaries —
# kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy,
# kubectl, kubelet and etcd — as one multi-call binary from the wrapper
# module tests/cluster/kube (its go.mod pins k8s.io/kubernetes and etcd;
# the Go module proxy serves them), into a cache outside the repo, with a
# symlink per program name next to it, and prints that directory. A binary
# already in the cache is reused while the wrapper module is unchanged.
#
# One binary because the programs share most of their code: one link of
# the shared k8s.io packages (tests/cluster/kube/main.go). About 10 minutes
# cold on 2 cores.
#
# Usage: scripts/build-kube.sh
# Env:   CRIB_TOOLS_DIR   cache root (default /var/cache/crib/tools)
# Out:   $CRIB_TOOLS_DIR/kube-<version>/kube and the symlinks
#        kube-apiserver kube-controller-manager kube-scheduler kube-proxy
#        kubectl kubelet etcd -> kube
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$repo/tests/cluster/kube
tools_dir=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}
names=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kubelet etcd)

log() { printf 'build-kube: %s\n' "$*" >&2; }

# The version is the wrapper's: its go.mod is the one place it is pinned.
version=$(sed -n -E 's#^[[:space:]]*k8s\.io/kubernetes[[:space:]]+(v[^[:space:]]+).*#\1#p' "$src/go.mod" | head -n1)
if [[ ! $version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]]; then
	log "no k8s.io/kubernetes v1.x.y require in $src/go.mod (got '$version')"
	exit 1
fi
minor=${BASH_REMATCH[1]}
out=$tools_dir/kube-$version

# The cache key: a change of the wrapper (another version, another program,
# a dependency) rebuilds; the directory's name stays, so callers keep one path.
key=$(cd "$src" && cat go.mod go.sum main.go | sha256sum | cut -c1-16)

# shellcheck source=lib/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/tools.sh"
tool_lock "$out"

if [[ -x $out/kube && -f $out/key && $(<"$out/key") == "$key" ]]; then
	log "reusing $out/kube"
	printf '%s\n' "$out"
	exit 0
fi

mkdir -p "$out"
rm -f "$out/key"

# The wrapper's go.sum is complete: -mod=readonly fails rather than
# resolving something new. GOWORK=off: no workspace reaches into it.
export GOFLAGS="-mod=readonly -buildvcs=false" GOWORK=off CGO_ENABLED=1
cd "$src"
log "downloading dependencies"
go mod download
log "building kube $version ($key; about 10 minutes cold on 2 cores)"
start=$SECONDS
go build -trimpath \
	-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" \
	-o "$out/kube.tmp" .
mv "$out/kube.tmp" "$out/kube"
for n in "${names[@]}"; do
	ln -sfn kube "$out/$n"
done
printf '%s\n' "$key" >"$out/key"
log "built $out/kube in $((SECONDS - start)) s ($(du -m "$out/kube" | cut -f1) MB)"
printf '%s\n' "$out"
