#!/usr/bin/env bash
# run.sh runs critest v1.36.0 against a cribd it starts on throwaway
# directories, with its own bridge network (cribct<N>, 10.88.<N>.0/24, N
# from its PID so that two runs, say bench.sh and the suite, can overlap) and the
# test images (tests/images/build.sh) served by a registry on loopback that
# cribd's registries.conf redirects registry.k8s.io, k8s.gcr.io, gcr.io,
# docker.io and public.ecr.aws to. It runs every spec but the benchmarks
# (see below), prints the summary and every failure, exits
# non-zero on an unexpected failure, and cleans up.
#
# Usage: tests/critest/run.sh [extra critest flags]      (as root)
# Env:   CRIB_CRITEST_FOCUS, CRIB_CRITEST_SKIP (see below), CRIB_BIN_DIR (default <repo>/bin), CRITEST, CRICTL (default the
#        cache scripts/build-cri-tools.sh fills), CRIB_CRITEST_KEEP=1 keeps
#        the temp dir (config, cribd.log, report.json); CRIB_CRITEST_REPORT
#        names a file to copy Ginkgo's JSON report to (bench.sh reads it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin_dir=${CRIB_BIN_DIR:-$repo/bin}
tools=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}/cri-tools-v1.36.0
critest=${CRITEST:-$tools/critest}
crictl=${CRICTL:-$tools/crictl}
octet=$((10 + $$ % 40)) # the integration tests take 100-249, e2e 50-89
bridge=cribct$octet

log() { printf 'critest/run.sh: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
	log "must run as root"
	exit 1
fi
for f in "$bin_dir/cribd" "$bin_dir/crib-shim" "$bin_dir/crib-pause" "$critest" "$crictl"; do
	if [[ ! -x $f ]]; then
		log "missing $f (make build; scripts/build-cri-tools.sh)"
		exit 1
	fi
done

# Short: cribd puts unix sockets under run_dir/pods/<64-hex id>/, and a
# socket path has at most 107 bytes.
tmp=$(mktemp -d /tmp/crib-ct.XXXXXX)
chmod 0711 "$tmp" # pods in user namespaces must reach their root filesystems below it
sock=$tmp/run/crib.sock
cgroup_parent=/crib-critest-$(basename "$tmp" | cut -d. -f2)
mkdir -p "$tmp/net.d" "$tmp/ipam"

"$repo/tests/images/build.sh"
cp -a "${CRIB_TOOLS_DIR:-/var/cache/crib/tools}/images/registry" "$tmp/registry-storage"
eval "$("$repo/tests/images/registry.sh" start "$tmp/registry" "$tmp/registry-storage")"
{
	echo 'unqualified-search-registries = []'
	for reg in registry.k8s.io k8s.gcr.io gcr.io docker.io public.ecr.aws; do
		# The name is rewritten to the loopback registry rather than given a
		# mirror: a mirror miss falls back to the upstream host, and tests
		# must not reach (or even resolve) any address off this machine.
		printf '\n[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$reg" "$REGISTRY_ADDR"
	done
} >"$tmp/registries.conf"

cat >"$tmp/crib.toml" <<TOML
root_dir = "$tmp/root"
run_dir = "$tmp/run"

[grpc]
socket = "$sock"

[log]
level = "debug"

[runtime]
cgroup_parent = "$cgroup_parent"
netns_dir = "/var/run/netns"

[network]
conf_dir = "$tmp/net.d"
bin_dirs = ["/usr/lib/cni"]
cache_dir = "$tmp/cni-cache"

[image]
registries_conf = "$tmp/registries.conf"
TOML

cat >"$tmp/net.d/10-cribit.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "cribit",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.88.$octet.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$tmp/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

crictl_() {
	"$crictl" --config /dev/null --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 30s "$@"
}

cribd_pid=
cleanup() {
	local rc=$?
	set +e
	if [[ -n $cribd_pid ]] && kill -0 "$cribd_pid" 2>/dev/null; then
		for id in $(crictl_ pods -q 2>/dev/null); do
			crictl_ stopp "$id" >/dev/null 2>&1 || log "cleanup: stopp $id failed"
			crictl_ rmp "$id" >/dev/null 2>&1 || log "cleanup: rmp $id failed"
		done
		kill -TERM "$cribd_pid"
		for _ in $(seq 150); do
			kill -0 "$cribd_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$cribd_pid" 2>/dev/null; then
			log "cleanup: cribd ignored SIGTERM for 15s; killing it"
			kill -KILL "$cribd_pid"
		fi
		wait "$cribd_pid" 2>/dev/null
	fi
	"$repo/tests/images/registry.sh" stop "$tmp/registry"
	if [[ -e /sys/class/net/$bridge ]]; then
		ip link del "$bridge"
	fi
	# Whatever cribd left: mounts of the temp dir, then the cgroups.
	grep -F "$tmp" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		log "cleanup: leftover mount $m"
		umount -l "$m"
	done
	for d in /sys/fs/cgroup/*"$cgroup_parent"; do
		[[ -d $d ]] || continue
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	if ((rc != 0)) && [[ -f $tmp/cribd.log ]]; then
		log "cribd log (last 100 lines of $tmp/cribd.log):"
		tail -n 100 "$tmp/cribd.log" >&2
	fi
	if [[ -n ${CRIB_CRITEST_KEEP:-} ]]; then
		log "keeping $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin_dir/cribd" --config "$tmp/crib.toml" --log-level debug >"$tmp/cribd.log" 2>&1 &
cribd_pid=$!
for i in $(seq 200); do
	if crictl_ version >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$cribd_pid" 2>/dev/null; then
		log "cribd exited during start"
		exit 1
	fi
	if ((i == 200)); then
		log "cribd did not answer on $sock within 20s"
		exit 1
	fi
	sleep 0.1
done
log "cribd $(crictl_ version | awk '/RuntimeVersion/ {print $2}') serving on $sock"

# The whole suite but the benchmarks (run by make bench). The spec pulling
# gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:... pins an
# upstream digest that cannot exist in a registry built offline: it runs,
# and its failure is the one expected; any other failure fails the run.
focus=('.')
skip='benchmark'
# CRIB_CRITEST_FOCUS (one regexp) and CRIB_CRITEST_SKIP replace the defaults,
# to look at other specs by hand.
if [[ -n ${CRIB_CRITEST_FOCUS:-} ]]; then
	focus=("$CRIB_CRITEST_FOCUS")
fi
skip=${CRIB_CRITEST_SKIP:-$skip}
expected_failure='public image with digest should be pulled and removed'

# critest -benchmark (bench.sh) turns on Ginkgo's succinct mode, which
# Ginkgo refuses together with -v.
verbose=(-ginkgo.v)
for a in "$@"; do
	if [[ $a == -benchmark || $a == --benchmark ]]; then
		verbose=()
	fi
done
args=(
	--runtime-endpoint "unix://$sock"
	--image-endpoint "unix://$sock"
	--runtime-service-timeout 30s
	--image-service-timeout 30s
	"${verbose[@]}"
	-ginkgo.no-color
	-ginkgo.skip "$skip"
	-ginkgo.json-report "$tmp/report.json"
)
for f in "${focus[@]}"; do
	args+=(-ginkgo.focus "$f")
done

set +e
# Ginkgo's verbose log goes to a file (printed on failure); the output lists
# every spec that ran with its result, from the JSON report.
log "running critest (log: $tmp/critest.log)"
(cd "$tmp" && "$critest" "${args[@]}" "$@") >"$tmp/critest.log" 2>&1
critest_rc=$?
set -e

if [[ ! -s $tmp/report.json ]]; then
	log "critest wrote no report (exit $critest_rc); its log:"
	tail -n 100 "$tmp/critest.log" >&2
	exit 1
fi
if [[ -n ${CRIB_CRITEST_REPORT:-} ]]; then
	cp "$tmp/report.json" "$CRIB_CRITEST_REPORT"
fi
jq -r '.[].SpecReports[]? | select(.LeafNodeType == "It" and .State != "skipped")
	| "  [\(.State)] \((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" "))"' "$tmp/report.json" | sort

spec_filter='[.[].SpecReports[]? | select(.LeafNodeType == "It")]'
passed=$(jq "$spec_filter | map(select(.State == \"passed\")) | length" "$tmp/report.json")
failed=$(jq "$spec_filter | map(select(.State | test(\"failed|panicked|timedout|interrupted|aborted\"))) | length" "$tmp/report.json")
skipped=$(jq "$spec_filter | map(select(.State == \"skipped\" or .State == \"pending\")) | length" "$tmp/report.json")
# Failures outside specs (BeforeSuite and the like) count too.
setup_failed=$(jq '[.[].SpecReports[]? | select(.LeafNodeType != "It" and (.State | test("failed|panicked|timedout|interrupted|aborted")))] | length' "$tmp/report.json")

echo "critest: ran $((passed + failed)): $passed passed, $failed failed, $skipped skipped"
# Skips: the ones this script's -ginkgo.skip filters out, counted; the ones
# the suite decides at run time (a host feature it does not find), named
# with the suite's reason. On this host those are the AppArmor specs (the
# kernel has no AppArmor); crib supports AppArmor where the kernel enforces
# it (internal/apparmor), and the VM lane's guest, which does, runs them.
filtered=$(jq "$spec_filter | map(select(.State == \"skipped\" and ((.Failure.Message // \"\") == \"\"))) | length" "$tmp/report.json")
echo "critest: skipped by this script's focus and skip ('$skip'): $filtered"
jq -r "$spec_filter"' | .[] | select(.State == "skipped" and ((.Failure.Message // "") != ""))
	| "critest: skipped by the suite: \((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" ")): \(.Failure.Message | split("\n")[0])"' "$tmp/report.json"
if ((failed + setup_failed > 0)); then
	echo "critest failures:"
	jq -r '.[].SpecReports[]? | select(.State | test("failed|panicked|timedout|interrupted|aborted"))
		| "  [\(.State)] \((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" "))\n      \(.Failure.Message // ""
			| split("\n") | map(select(test("^\\s*(<\\*|[{}]|Unexpected error:|s: |msg: |err: |$)") | not)) | .[0:1] | join("\n      "))"' "$tmp/report.json"
fi
unexpected=$(jq --arg exp "$expected_failure" "$spec_filter"' | map(select((.State | test("failed|panicked|timedout|interrupted|aborted")) and (.LeafNodeText | contains($exp) | not))) | length' "$tmp/report.json")
expected=$((failed - unexpected))
if ((expected > 0)); then
	echo "critest: $expected expected failure (upstream digest, cannot exist offline): $expected_failure"
fi
# The closing line counts only unexpected failures (the expected one is
# named just above).
echo "critest: $passed passed, $unexpected failed, $skipped skipped"
if ((unexpected + setup_failed > 0)); then
	echo "critest: $unexpected unexpected failure(s); the failures in critest's log:"
	grep -E -A 30 '^\s*\[FAILED\]' "$tmp/critest.log" | head -n 300 >&2
	exit 1
fi
