#!/usr/bin/env bash
# suite.sh runs the node suite (tests/node, build tag "node") in the VM
# lane's guest: it builds the test binary, puts it into a share dir with the
# files the suite installs in the guest (scripts/crib.service, the bridge
# CNI config, docs/examples) and runs it there with tests/node/run.sh, which
# adds crib's binaries, crictl, kubelet and the test images. It exits with
# the suite's status. `make test-node` builds what it needs first.
#
# Usage: tests/node/suite.sh [go test flags for the guest, e.g. -test.run TestPodLifecycle]
# Env:   as tests/node/run.sh (CRIB_BIN_DIR, CRIB_TOOLS_DIR, CRIB_NODE_TIMEOUT,
#        CRIB_NODE_KEEP=1 keeps the share dir with out/console.log);
#        GOTAGS (the build tags; add "bench" for TestBenchNode);
#        CRIB_CONTAINERD_DIR puts containerd, its shim and runc in the share
#        (the benchmark runs them beside crib)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
gotags=${GOTAGS:-seccomp containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_zfs exclude_disk_quota containers_image_docker_daemon_stub}

# The whole run (boot included) gets 30 minutes unless told otherwise:
# about two and a half times what the suite takes on an idle CI machine
# (tests/README.md, Time of a CI run), and short enough that a hung guest
# fails CI with the suite's output before CI's own limit cuts it off. A
# loaded machine may need more: set CRIB_NODE_TIMEOUT.
export CRIB_NODE_TIMEOUT=${CRIB_NODE_TIMEOUT:-1800}

share=$(mktemp -d /tmp/crib-node-suite-XXXXXX)
if [[ ${CRIB_NODE_KEEP:-} == 1 ]]; then
	echo "suite: share dir $share (kept)" >&2
else
	trap 'rm -rf "$share"' EXIT
fi

(cd "$repo" && go test -c -tags "$gotags node" -o "$share/node.test" ./tests/node)
mkdir -p "$share/files"
cp "$repo/scripts/crib.service" "$repo/scripts/cni/10-crib-bridge.conflist" \
	"$repo/docs/examples/pod.json" "$repo/docs/examples/container.json" "$share/files/"
# The benchmark (make bench-node) runs containerd beside crib: its
# binaries from scripts/build-containerd.sh, when given.
if [[ -n ${CRIB_CONTAINERD_DIR:-} ]]; then
	mkdir -p "$share/containerd"
	for b in containerd containerd-shim-runc-v2 runc; do
		cp "$CRIB_CONTAINERD_DIR/$b" "$share/containerd/$b"
	done
fi

# The guest's script: the suite binary, verbose, with the caller's flags.
flags=
if (($# > 0)); then
	flags=$(printf ' %q' "$@")
fi
printf '#!/bin/sh\ncd /mnt/crib && exec ./node.test -test.v -test.timeout 28m%s\n' "$flags" >"$share/guest.sh"

"$here/run.sh" "$share/guest.sh" "$share"
