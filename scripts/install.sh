#!/usr/bin/env bash
# install.sh: the README's first command. On a fresh Debian 12 machine (as
# root) it installs crib's Debian dependencies, builds and installs cribd,
# crib-shim and crib-pause into /usr/local/bin, gives the node a bridge CNI
# config when /etc/cni/net.d has none, and starts cribd with its built-in
# defaults (no config file needed), logging to /var/log/crib/cribd.log.
# Re-running it is safe: it restarts cribd with the new build, and pods keep
# running across the restart.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'install: %s\n' "$*" >&2; }

scripts/install-deps.sh
make build
make install PREFIX=/usr/local

if ! ls /etc/cni/net.d/*.conf /etc/cni/net.d/*.conflist /etc/cni/net.d/*.json >/dev/null 2>&1; then
	install -D -m 0644 scripts/cni/10-crib-bridge.conflist /etc/cni/net.d/10-crib-bridge.conflist
	log "wrote /etc/cni/net.d/10-crib-bridge.conflist (bridge crib0, 10.88.0.0/16)"
fi

sock=/run/crib/crib.sock
if pid=$(pgrep -x cribd); then
	log "stopping running cribd ($pid)"
	kill $pid
	for _ in $(seq 100); do pgrep -x cribd >/dev/null || break; sleep 0.1; done
fi
rm -f "$sock"
mkdir -p /var/log/crib
setsid /usr/local/bin/cribd </dev/null >>/var/log/crib/cribd.log 2>&1 &
for _ in $(seq 100); do
	[[ -S $sock ]] && break
	sleep 0.1
done
if [[ ! -S $sock ]]; then
	log "cribd did not start; see /var/log/crib/cribd.log:"
	tail -20 /var/log/crib/cribd.log >&2
	exit 1
fi
log "cribd is serving on unix://$sock (log: /var/log/crib/cribd.log)"
