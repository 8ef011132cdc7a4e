#!/bin/bash
# cgroup v2 checks, run inside the VM lane's guest (cgroup v2, systemd, psi=1):
#
#   make build BIN=$PWD/bin
#   CRIB_BIN_DIR=$PWD/bin /work/wt/vm/tests/node/run.sh tests/node/cgroup2.sh
#
# cribd runs with the cgroupfs driver (its defaults, parent /crib) and a
# loopback registry serving the seeded test images. It checks, against the
# cgroup files: crictl stats/statsp (CPU, memory, working set, processes
# within 10%, PSI present), each container's own cgroup namespace
# (/sys/fs/cgroup/memory.max inside is its own limit), swap from
# memory_swap_limit_in_bytes and from kubelet's unified memory.swap.max,
# memory QoS through unified (memory.min, memory.high), hugetlb.2MB.max,
# UpdateContainerResources, and an OOM kill reported as OOMKilled, 137.
# Exit status: the number of failed checks (0 = all passed).
set -u
export PATH=/mnt/crib/bin:$PATH
export CONTAINER_RUNTIME_ENDPOINT=unix:///run/crib/crib.sock IMAGE_SERVICE_ENDPOINT=unix:///run/crib/crib.sock
# TCG is slow: crictl's default 2 s connection timeout is too short.
crictl() { command crictl --timeout 120s "$@"; }
work=$(mktemp -d)
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # check NAME GOT WANT
	if [ "$2" = "$3" ]; then pass "$1 = $2"; else fail "$1 = $2, want $3"; fi
}
within10() { # within10 NAME GOT WANT: |got-want| <= 10% of want, and want > 0
	if [ "$3" -gt 0 ] && [ $((($2 - $3) * 10)) -le "$3" ] && [ $((($3 - $2) * 10)) -le "$3" ]; then
		pass "$1: crib $2, cgroup $3"
	else
		fail "$1: crib $2, cgroup $3 (not within 10%)"
	fi
}
poll() { # poll SECONDS COMMAND...: until COMMAND succeeds
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}
cleanup() {
	crictl rmp -af >/dev/null 2>&1
	[ -n "${cribd:-}" ] && kill "$cribd" 2>/dev/null && wait "$cribd" 2>/dev/null
	[ -n "${registry:-}" ] && kill "$registry" 2>/dev/null
	echo "--- cribd log (warnings and errors)"
	grep -E 'level=(warning|error)' "$work/cribd.log" | tail -20
}
trap cleanup EXIT

echo "kernel $(uname -r); /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup); controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"

# Registry and cribd.
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: /mnt/crib/images/registry}}
http: {addr: 127.0.0.1:5000}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry=$!
cat >"$work/registries.conf" <<EOF
unqualified-search-registries = []
[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5000"
insecure = true
EOF
mkdir -p /etc/crib
printf 'runtime-endpoint: unix:///run/crib/crib.sock\nimage-endpoint: unix:///run/crib/crib.sock\n' >/etc/crictl.yaml
cat >/etc/crib/crib.toml <<EOF
[image]
registries_conf = "$work/registries.conf"
EOF
cribd >"$work/cribd.log" 2>&1 &
cribd=$!
poll 60 test -S /run/crib/crib.sock || { fail "cribd socket"; exit 1; }
poll 30 crictl pull busybox >/dev/null || { fail "pull busybox"; exit 1; }

cat >"$work/pod.json" <<EOF
{"metadata": {"name": "cg2", "namespace": "default", "uid": "cg2-uid"},
 "log_directory": "$work/logs",
 "linux": {"security_context": {"namespace_options": {"network": 2}}}}
EOF
mkdir -p "$work/logs"
pod=$(crictl runp "$work/pod.json") || { fail "runp"; tail -20 "$work/cribd.log"; exit 1; }

# ctr NAME RESOURCES-JSON COMMAND: creates and starts a busybox container.
ctr() {
	cat >"$work/$1.json" <<EOF
{"metadata": {"name": "$1"}, "image": {"image": "busybox"},
 "command": ["sh", "-c", "$3"], "log_path": "$1.log",
 "linux": {"resources": $2}}
EOF
	local id
	id=$(crictl create "$pod" "$work/$1.json" "$work/pod.json") && crictl start "$id" >/dev/null && echo "$id"
}
cgdir() { echo "/sys/fs/cgroup/crib/$1"; }

# 1. Stats against the cgroup files. "work" uses 64 MiB at most, fills
# 20 MiB of tmpfs and burns a fifth of a core.
work_id=$(ctr work '{"memory_limit_in_bytes": 67108864, "cpu_period": 100000, "cpu_quota": 20000}' \
	'dd if=/dev/zero of=/dev/shm/f bs=1M count=20; while :; do :; done') || fail "create work"
dir=$(cgdir "$work_id")
check "work memory.max" "$(cat "$dir/memory.max")" 67108864
check "work cpu.max" "$(cat "$dir/cpu.max")" "20000 100000"
poll 30 sh -c "[ \$(sed -n 's/^usage_usec //p' $dir/cpu.stat) -gt 1000000 ]" || fail "work used no CPU"
js=$(crictl stats -o json --id "$work_id")
cg_cpu=$(($(sed -n 's/^usage_usec //p' "$dir/cpu.stat") * 1000))
cg_mem=$(cat "$dir/memory.current")
cg_ws=$((cg_mem - $(sed -n 's/^inactive_file //p' "$dir/memory.stat")))
within10 "work cpu usage ns" "$(jq -r '.stats[0].cpu.usageCoreNanoSeconds.value' <<<"$js")" "$cg_cpu"
within10 "work memory usage" "$(jq -r '.stats[0].memory.usageBytes.value' <<<"$js")" "$cg_mem"
within10 "work working set" "$(jq -r '.stats[0].memory.workingSetBytes.value' <<<"$js")" "$cg_ws"
within10 "work rss (anon)" "$(jq -r '.stats[0].memory.rssBytes.value' <<<"$js")" "$(sed -n 's/^anon //p' "$dir/memory.stat")"
avail=$(jq -r '.stats[0].memory.availableBytes.value // "none"' <<<"$js")
[ "$avail" != none ] && [ "$avail" -gt 0 ] && pass "work available bytes $avail" || fail "work available bytes $avail"
jq -e '.stats[0].cpu.psi.Some and .stats[0].memory.psi.Some' <<<"$js" >/dev/null && pass "work cpu and memory PSI present" ||
	fail "work PSI missing: $(jq -c '.stats[0].cpu' <<<"$js")"
sleep 2 # two samples for usage_nano_cores
js=$(crictl stats -o json --id "$work_id")
nc=$(jq -r '.stats[0].cpu.usageNanoCores.value' <<<"$js")
[ "$nc" -gt 100000000 ] && [ "$nc" -lt 300000000 ] && pass "work nano cores $nc (quota 0.2 core)" || fail "work nano cores $nc, want about 200000000"

sp=$(crictl statsp -o json --id "$pod")
pause_dir=$(cgdir "$pod")
cg_pids=$(($(cat "$pause_dir/pids.current") + $(cat "$dir/pids.current")))
cg_pmem=$(($(cat "$pause_dir/memory.current") + $(cat "$dir/memory.current")))
within10 "pod processes" "$(jq -r '.stats[0].linux.process.processCount.value' <<<"$sp")" "$cg_pids"
within10 "pod memory usage" "$(jq -r '.stats[0].linux.memory.usageBytes.value' <<<"$sp")" "$cg_pmem"
[ "$(jq -r '.stats[0].linux.cpu.usageCoreNanoSeconds.value' <<<"$sp")" -gt 0 ] && pass "pod cpu non-zero" || fail "pod cpu zero"

# 2. The container's own cgroup namespace.
check "work /proc/self/cgroup inside" "$(crictl exec "$work_id" cat /proc/self/cgroup)" "0::/"
check "work memory.max inside" "$(crictl exec "$work_id" cat /sys/fs/cgroup/memory.max)" 67108864
# (busybox's stat does not name cgroup2's magic: read the mount table.)
check "work /sys/fs/cgroup fstype inside" "$(crictl exec "$work_id" awk '$2 == "/sys/fs/cgroup" {print $3}' /proc/self/mounts)" cgroup2
cat >"$work/priv.json" <<EOF
{"metadata": {"name": "priv"}, "image": {"image": "busybox"}, "command": ["sleep", "600"], "log_path": "priv.log",
 "linux": {"security_context": {"privileged": true}}}
EOF
priv_id=$(crictl create "$pod" "$work/priv.json" "$work/pod.json") && crictl start "$priv_id" >/dev/null || fail "create priv"
check "privileged /proc/self/cgroup inside (host's view)" "$(crictl exec "$priv_id" cat /proc/self/cgroup)" "0::/crib/$priv_id"

# 3. Resources: swap as memory+swap (CRI field) and as kubelet's LimitedSwap
# on v2 sets it (unified memory.swap.max), memory QoS, hugetlb, update.
res_id=$(ctr res '{"memory_limit_in_bytes": 67108864, "memory_swap_limit_in_bytes": 100663296,
  "hugepage_limits": [{"page_size": "2MB", "limit": 0}],
  "unified": {"memory.min": "8388608", "memory.high": "50331648"}}' 'exec sleep 600') || fail "create res"
rdir=$(cgdir "$res_id")
check "res memory.swap.max (96 MiB mem+swap, 64 MiB mem)" "$(cat "$rdir/memory.swap.max")" 33554432
check "res memory.min" "$(cat "$rdir/memory.min")" 8388608
check "res memory.high" "$(cat "$rdir/memory.high")" 50331648
if [ -e "$rdir/hugetlb.2MB.max" ]; then
	check "res hugetlb.2MB.max" "$(cat "$rdir/hugetlb.2MB.max")" 0
else
	fail "res has no hugetlb.2MB.max (controllers: $(cat "$rdir/cgroup.controllers"))"
fi
ls_id=$(ctr limitedswap '{"memory_limit_in_bytes": 67108864, "unified": {"memory.swap.max": "16777216"}}' 'exec sleep 600') ||
	fail "create limitedswap"
check "limitedswap memory.swap.max (kubelet's unified)" "$(cat "$(cgdir "$ls_id")/memory.swap.max")" 16777216
noswap_id=$(ctr noswap '{"memory_limit_in_bytes": 67108864}' 'exec sleep 600') || fail "create noswap"
check "noswap memory.swap.max (no swap limit: none)" "$(cat "$(cgdir "$noswap_id")/memory.swap.max")" 0
crictl update --memory 134217728 --cpu-quota 50000 --cpu-period 100000 "$res_id" >/dev/null || fail "update res"
check "res memory.max after update" "$(cat "$rdir/memory.max")" 134217728
check "res cpu.max after update" "$(cat "$rdir/cpu.max")" "50000 100000"
check "res memory.max inside after update" "$(crictl exec "$res_id" cat /sys/fs/cgroup/memory.max)" 134217728

# 4. OOM kill: 32 MiB, tail /dev/zero holds one ever-growing line.
oom_id=$(ctr oom '{"memory_limit_in_bytes": 33554432}' 'tail /dev/zero') || fail "create oom"
exited() { [ "$(crictl inspect -o json "$oom_id" | jq -r .status.state)" = CONTAINER_EXITED ]; }
if poll 120 exited; then
	st=$(crictl inspect -o json "$oom_id")
	check "oom reason" "$(jq -r .status.reason <<<"$st")" OOMKilled
	check "oom exit code" "$(jq -r .status.exitCode <<<"$st")" 137
else
	fail "oom container still running after 120 s"
fi

crictl rmp -f "$pod" >/dev/null || fail "rmp"
[ -d "$dir" ] && fail "work cgroup $dir left after rmp" || pass "container cgroups removed"
echo "failed checks: $fails"
exit "$fails"
