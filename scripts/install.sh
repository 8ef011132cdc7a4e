#!/usr/bin/env bash
# install.sh: the README's first command. On a fresh Debian 12 machine (as
# root) it installs crib's Debian dependencies, builds and installs cribd,
# crib-shim and crib-pause into /usr/local/bin, gives the node a bridge CNI
# config when /etc/cni/net.d has none and crictl an /etc/crictl.yaml
# pointing at crib when it has none, and starts cribd with its built-in
# defaults (no config file needed): as the systemd service crib.service
# (scripts/crib.service) when systemd is PID 1, else in the background,
# logging to /var/log/crib/cribd.log. Re-running it is safe: it restarts
# cribd with the new build, and pods keep running across the restart.
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

# crictl: point it at crib (without a config it warns on every call and
# tries other runtimes' sockets first).
if [[ ! -e /etc/crictl.yaml ]]; then
	cat >/etc/crictl.yaml <<-'EOF'
		runtime-endpoint: unix:///run/crib/crib.sock
		image-endpoint: unix:///run/crib/crib.sock
		timeout: 30
	EOF
	log "wrote /etc/crictl.yaml (runtime and image endpoint unix:///run/crib/crib.sock)"
fi

sock=/run/crib/crib.sock

# With systemd as PID 1, cribd runs as crib.service (scripts/crib.service):
# systemd restarts it, and kubelet's unit can order itself after it.
# `systemctl restart` replaces cribd and leaves the pods running.
if [[ -d /run/systemd/system ]]; then
	if pid=$(pgrep -x cribd) && ! systemctl -q is-active crib.service; then
		log "stopping cribd ($pid) started outside systemd"
		kill $pid
		for _ in $(seq 100); do pgrep -x cribd >/dev/null || break; sleep 0.1; done
	fi
	install -D -m 0644 scripts/crib.service /etc/systemd/system/crib.service
	systemctl daemon-reload
	systemctl enable -q crib.service
	# Type=notify: this returns once cribd serves on its socket.
	if ! systemctl restart crib.service; then
		log "crib.service did not start:"
		journalctl -u crib.service -n 20 --no-pager >&2 || true
		exit 1
	fi
	log "cribd is serving on unix://$sock as crib.service (logs: journalctl -u crib)"
	exit 0
fi

# Without systemd: cribd in the background, logging to a file.
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
