#!/usr/bin/env bash
# registry.sh runs Debian's docker-registry (distribution) on 127.0.0.1
# with a free port.
#
#   registry.sh start WORKDIR STORAGEDIR [HTPASSWD]
#       starts it in the background, serving STORAGEDIR (optionally with
#       htpasswd basic auth), and prints shell assignments:
#       REGISTRY_ADDR=127.0.0.1:PORT REGISTRY_PID=PID. The log is
#       WORKDIR/registry.log. It returns once the registry answers /v2/.
#   registry.sh stop WORKDIR
#       stops the registry started with WORKDIR.
set -euo pipefail

log() { printf 'registry: %s\n' "$*" >&2; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case ${1:-} in
start)
	work=$2 storage=$3 htpasswd=${4:-}
	mkdir -p "$work" "$storage"
	port=$(free_port)
	{
		echo 'version: 0.1'
		echo 'log: {level: warn, accesslog: {disabled: true}}'
		echo "storage: {filesystem: {rootdirectory: \"$storage\"}, delete: {enabled: true}}"
		echo "http: {addr: \"127.0.0.1:$port\"}"
		if [[ -n $htpasswd ]]; then
			echo "auth: {htpasswd: {realm: crib-test, path: \"$htpasswd\"}}"
		fi
	} >"$work/registry.yml"
	setsid docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$work/registry.pid"
	for _ in $(seq 100); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" 2>/dev/null || true)
		if [[ $code == 200 || $code == 401 ]]; then
			echo "REGISTRY_ADDR=127.0.0.1:$port REGISTRY_PID=$pid"
			exit 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "docker-registry exited: $(tail -5 "$work/registry.log")"
			exit 1
		fi
		sleep 0.1
	done
	log "docker-registry did not answer on 127.0.0.1:$port"
	kill "$pid"
	exit 1
	;;
stop)
	work=$2
	[[ -f $work/registry.pid ]] || exit 0
	pid=$(cat "$work/registry.pid")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	rm -f "$work/registry.pid"
	;;
*)
	echo "usage: $0 start WORKDIR STORAGEDIR [HTPASSWD] | stop WORKDIR" >&2
	exit 2
	;;
esac
