#!/bin/bash
# systemd-driver.sh runs in the VM lane's guest (systemd PID 1, cgroup v2):
# cribd from the share's bin/ with cgroup_driver = "systemd", then with
# "cgroupfs", each with a kubelet-style parent and the default one; a
# container with a memory limit; its scope's MemoryMax; and after stop and
# removal, no unit, slice or cgroup crib made. Also: cribd and the shim
# SIGKILLed, a new cribd still removes everything.
#
# Usage (host): CRIB_BIN_DIR=$PWD/bin /work/wt/vm/tests/node/run.sh tests/node/systemd-driver.sh
# ONLY=systemd or ONLY=cgroupfs (in the guest's environment) runs one half.
set -u
only=${ONLY:-}
export PATH=/mnt/crib/bin:$PATH
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
sock=/run/crib/crib.sock
cri() { crictl -r unix://$sock -i unix://$sock -t 60s "$@"; }

# Test images: a loopback registry the public names are rewritten to.
mkdir -p /var/lib/reg /etc/containers /etc/crib /etc/cni/net.d
cp -a /mnt/crib/images/registry /var/lib/reg/storage
cat >/var/lib/reg/registry.yml <<Y
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: /var/lib/reg/storage}}
http: {addr: 127.0.0.1:5000}
Y
systemd-run --unit crib-sd-registry --quiet docker-registry serve /var/lib/reg/registry.yml
for i in $(seq 100); do curl -sf http://127.0.0.1:5000/v2/ >/dev/null && break; sleep 0.2; done
{
	echo 'unqualified-search-registries = []'
	for r in docker.io registry.k8s.io; do printf '\n[[registry]]\nprefix = "%s"\nlocation = "127.0.0.1:5000"\ninsecure = true\n' $r; done
} >/etc/containers/registries.conf
cat >/etc/cni/net.d/10-sd.conflist <<'J'
{"cniVersion": "1.0.0", "name": "sd", "plugins": [{"type": "bridge", "bridge": "sd0", "isGateway": true, "ipMasq": true,
 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.89.0.0/16"}]]}}]}
J

startd() { # driver
	cat >/etc/crib/crib.toml <<T
[runtime]
cgroup_driver = "$1"
[network]
bin_dirs = ["/usr/lib/cni"]
[image]
registries_conf = "/etc/containers/registries.conf"
T
	cribd --log-level debug >>/tmp/cribd-$1.log 2>&1 &
	cribd_pid=$!
	for i in $(seq 300); do [ -S $sock ] && cri version >/dev/null 2>&1 && return 0; sleep 0.1; done
	fail "cribd ($1) did not serve"; tail -20 /tmp/cribd-$1.log
}
stopd() { kill $cribd_pid; wait $cribd_pid 2>/dev/null; }

podjson() { # name parent
	local linux='{}'
	[ -n "$2" ] && linux="{\"cgroup_parent\": \"$2\"}"
	cat >/tmp/pod-$1.json <<P
{"metadata": {"name": "$1", "uid": "uid-$1", "namespace": "sd", "attempt": 0}, "log_directory": "/tmp/logs-$1", "linux": $linux}
P
}
ctrjson() {
	cat >/tmp/ctr.json <<C
{"metadata": {"name": "sleeper"}, "image": {"image": "busybox"}, "command": ["sleep", "600"], "log_path": "sleeper.log",
 "linux": {"resources": {"memory_limit_in_bytes": 67108864, "cpu_period": 100000, "cpu_quota": 50000}}}
C
}

leftovers() { # what crib might leave: units and cgroups
	systemctl list-units --all --no-legend --plain | grep -E 'crib-[0-9a-f]{64}|crib\.slice|kubepods' 
	find /sys/fs/cgroup -maxdepth 5 -type d 2>/dev/null | grep -E '/(crib|crib\.slice|kubepods[^/]*|crib-[0-9a-f]{64}\.scope|[0-9a-f]{64})$'
}

# scenario driver parent expected-dir-of-parent
scenario() {
	local driver=$1 parent=$2 pdir=$3 name=sd-$1-$RANDOM
	echo "=== $driver, parent '${parent:-default}'"
	podjson $name "$parent"; ctrjson
	local p c
	p=$(cri runp /tmp/pod-$name.json) || { fail "runp ($driver, $parent)"; return; }
	c=$(cri create $p /tmp/ctr.json /tmp/pod-$name.json) || { fail "create ($driver, $parent)"; return; }
	cri start $c >/dev/null || fail "start ($driver)"
	if [ $driver = systemd ]; then
		local slice=${parent:-crib.slice}
		systemctl status --no-pager $slice | head -20
		systemctl status --no-pager crib-$p.scope | head -8
		systemctl status --no-pager crib-$c.scope | head -8
		local mm; mm=$(systemctl show -P MemoryMax crib-$c.scope)
		[ "$mm" = 67108864 ] && ok "crib-$c.scope MemoryMax=$mm" || fail "crib-$c.scope MemoryMax=$mm, want 67108864"
		local cq; cq=$(systemctl show -P CPUQuotaPerSecUSec crib-$c.scope)
		[ "$cq" = 500ms ] && ok "CPUQuotaPerSecUSec=$cq" || fail "CPUQuotaPerSecUSec=$cq, want 500ms"
		[ "$(systemctl show -P Slice crib-$c.scope)" = "$slice" ] && ok "scope in $slice" || fail "scope not in $slice"
		local dir=/sys/fs/cgroup$pdir/crib-$c.scope
	else
		local dir=/sys/fs/cgroup$pdir/$c
	fi
	[ "$(cat $dir/memory.max 2>&1)" = 67108864 ] && ok "$dir/memory.max" || fail "$dir/memory.max = $(cat $dir/memory.max 2>&1)"
	cri inspectp $p | grep -i cgroup
	cri stop -t 2 $c >/dev/null; cri rm $c >/dev/null
	cri stopp $p >/dev/null; cri rmp $p >/dev/null
	local left; left=$(leftovers)
	[ -z "$left" ] && ok "nothing left ($driver, ${parent:-default})" || fail "left after removal ($driver, ${parent:-default}):
$left"
}

# kill9 driver parent: cribd and the shim SIGKILLed with the pod running.
kill9() {
	local driver=$1 parent=$2 name=sd-k9-$1-$RANDOM
	echo "=== $driver, parent '$parent', cribd and shim SIGKILLed"
	podjson $name "$parent"
	local p; p=$(cri runp /tmp/pod-$name.json) || { fail "runp (kill9 $driver)"; return; }
	kill -9 $(cat /run/crib/pods/$p/shim.pid) $cribd_pid; wait $cribd_pid 2>/dev/null
	startd $driver
	cri stopp $p >/dev/null || fail "stopp after kill -9"
	cri rmp $p >/dev/null || fail "rmp after kill -9"
	local left; left=$(leftovers)
	[ -z "$left" ] && ok "nothing left after kill -9 ($driver)" || fail "left after kill -9 ($driver):
$left"
}

echo "host: $(uname -r), $(systemctl --version | head -1), cgroup: $(stat -fc %T /sys/fs/cgroup)"
leftovers | sed 's/^/before: /'

if [ "$only" != cgroupfs ]; then
startd systemd
cri pull busybox >/dev/null || fail "pull"
scenario systemd kubepods-besteffort-pod1234.slice /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice
scenario systemd "" /crib.slice
kill9 systemd kubepods-burstable-pod99.slice
# A path under systemd is InvalidArgument naming the field.
podjson sd-bad /kubepods/pod1
out=$(cri runp /tmp/pod-sd-bad.json 2>&1) && fail "a path parent under systemd ran" || {
	echo "$out" | grep -q 'InvalidArgument.*linux.cgroup_parent' && ok "path under systemd: $out" || fail "path under systemd: $out"; }
stopd
fi

if [ "$only" != systemd ]; then
startd cgroupfs
cri pull busybox >/dev/null || fail "pull"
scenario cgroupfs /kubepods/besteffort/pod1234 /kubepods/besteffort/pod1234
scenario cgroupfs "" /crib
kill9 cgroupfs /kubepods/burstable/pod99
stopd
fi

echo "cribd logs (warnings):"; grep -hiE 'level=(warn|error)' /tmp/cribd-*.log | tail -20
echo "RESULT: $fails failure(s)"
exit $fails
