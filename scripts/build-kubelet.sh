#!/usr/bin/env bash
# build-kubelet.sh prints the path of a kubelet v1.37.x: the kubelet of the
# multi-call Kubernetes binary scripts/build-kube.sh builds (and caches), so
# the e2e tests, the node suite and the cluster tests run one build of
# kubelet. The path is a symlink named kubelet to that binary, which runs
# kubelet when called under that name; a copy of it under the name kubelet
# (`cp`, which follows the link) runs kubelet too.
#
# Usage: scripts/build-kubelet.sh
# Env:   CRIB_TOOLS_DIR   cache root (default /var/cache/crib/tools)
# The version is the one tests/cluster/kube/go.mod pins.
set -euo pipefail

dir=$("$(dirname "${BASH_SOURCE[0]}")/build-kube.sh")
printf '%s\n' "$dir/kubelet"
