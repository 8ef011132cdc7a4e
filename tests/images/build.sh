#!/usr/bin/env bash
# build.sh builds crib's test images from Debian's dynamic busybox (hard
# links, not busybox-static: its shell runs applets in-process, which
# defeats critest's masked-path check) with umoci, and seeds a registry
# storage directory holding every name in images.list, pushed with skopeo.
# No Docker. Idempotent: the result is cached under
#   ${CRIB_TOOLS_DIR:-/var/cache/crib/tools}/images/{oci,registry,stamp}
# and rebuilt only when this script, images.list, busybox or the CoreDNS
# binary (scripts/build-coredns.sh) changes.
# Tests copy images/registry into a temp dir and serve it with
# registry.sh (Debian's docker-registry) on loopback.
#
# Usage: tests/images/build.sh     (as root; needs busybox umoci skopeo docker-registry gcc go)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CRIB_TOOLS_DIR:-/var/cache/crib/tools}/images
log() { printf 'images: %s\n' "$*" >&2; }

for tool in busybox umoci skopeo docker-registry gcc; do
	command -v "$tool" >/dev/null || { log "missing $tool (scripts/install-deps.sh installs it)"; exit 1; }
done

# One build at a time: a second run (another checkout, a parallel make)
# waits here and then finds the cache up to date, instead of replacing the
# registry directory while tests copy it.
mkdir -p "$cache"
exec {lockfd}>"$cache/.lock"
flock "$lockfd"

# CoreDNS for the cluster test's DNS (scripts/build-coredns.sh, cached in
# the tools dir: about 11 minutes the first time on a fresh machine, at once
# afterwards). Its binary is part of the cache key.
if ! coredns=$("$here/../../scripts/build-coredns.sh"); then
	log "scripts/build-coredns.sh failed"
	exit 1
fi

pause_c=$here/../../cmd/crib-pause/pause.c
want=$(cat "$here/build.sh" "$here/images.list" "$here/registry.sh" "$here/nonewprivs.c" "$pause_c" /bin/busybox "$coredns" | sha256sum | cut -c1-32)
if [[ -f $cache/stamp && $(cat "$cache/stamp") == "$want" && -d $cache/registry && -d $cache/oci ]]; then
	log "up to date in $cache"
	exit 0
fi

work=$(mktemp -d "$cache/.build-XXXXXX")
regpid=
cleanup() {
	[[ -n $regpid ]] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

layout=$work/oci
export SOURCE_DATE_EPOCH=0
umoci init --layout "$layout"
umoci new --image "$layout:empty"

# base: busybox, its libraries, users and groups critest expects.
umoci unpack --image "$layout:empty" "$work/base"
root=$work/base/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,var/run,var/www,home/default-user}
chmod 1777 "$root/tmp"
install -m 0755 /bin/busybox "$root/bin/busybox"
while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done < <(ldd /bin/busybox | grep -o '/[^ ]*' | sort -u)
for applet in $(/bin/busybox --list-full); do
	[[ $applet == bin/busybox ]] && continue
	mkdir -p "$root/$(dirname "$applet")"
	ln -f "$root/bin/busybox" "$root/$applet"
done
# Tools critest runs that Debian's busybox does not build: ipcs from
# util-linux (libc only, which the image has), and a pgrep that lists the
# PIDs whose command name matches, as procps' pgrep does for one pattern.
install -m 0755 /usr/bin/ipcs "$root/usr/bin/ipcs"
cat >"$root/usr/bin/pgrep" <<'PGREP'
#!/bin/sh
# crib test stand-in for procps pgrep: pgrep PATTERN prints matching PIDs.
found=1
for d in /proc/[0-9]*; do
	if grep -q -- "$1" "$d/comm" 2>/dev/null; then
		echo "${d#/proc/}"
		found=0
	fi
done
exit $found
PGREP
chmod 0755 "$root/usr/bin/pgrep"
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/sh
default-user:x:1000:1000:default-user:/home/default-user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
www-data:x:33:
users:x:100:
default-user:x:1000:
group-defined-in-image:x:50000:default-user
nogroup:x:65534:
GROUP
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
umoci repack --image "$layout:base" "$work/base"

path=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
variant() { # name, then umoci config flags
	local name=$1
	shift
	umoci config --image "$layout:base" --tag "$name" --config.env "$path" "$@"
}
variant busybox --config.cmd sh
for i in 1 2 3; do variant "variant-$i" --config.cmd sh --config.label "crib.test.variant=$i"; done
# critest pulls and removes these one by one and checks each one's RepoTags:
# each must be an image of its own, not one that busybox tests also pull.
for v in latest tag tag-all tags; do variant "$v" --config.cmd sh --config.label "crib.test.variant=$v"; done
variant user-uid --config.cmd sh --config.user 1002
variant user-username --config.cmd sh --config.user www-data
variant user-uid-group --config.cmd sh --config.user 1003:100
variant user-username-group --config.cmd sh --config.user www-data:www-data
variant predefined-group --config.cmd sh --config.user 1000

# layered: a new layer over base, with extra files.
layered() { # name, dir-populating function, then umoci config flags
	local name=$1 fill=$2
	shift 2
	umoci unpack --image "$layout:base" "$work/$name"
	"$fill" "$work/$name/rootfs"
	umoci repack --image "$layout:$name" "$work/$name"
	umoci config --image "$layout:$name" --config.env "$path" "$@"
}
# nginx stand-in: busybox httpd whose PID 1 command line reads
# "nginx: master process …" (busybox picks the applet from argv[0]'s base
# name) and which writes /var/run/nginx.pid, as critest checks.
nginx_files() { # rootfs, port
	mkdir -p "$1/usr/share/nginx/html" "$1/usr/sbin"
	echo '<html><body><h1>Welcome to nginx!</h1></body></html>' >"$1/usr/share/nginx/html/index.html"
	# The server runs from a copy of busybox named nginx, so its command
	# name (what pidof matches) is nginx, while argv[0]'s base name picks
	# busybox's httpd applet.
	mkdir -p "$1/usr/lib/nginx"
	cp "$1/bin/busybox" "$1/usr/lib/nginx/nginx"
	cat >"$1/usr/sbin/nginx" <<SCRIPT
#!/bin/sh
# crib test stand-in for nginx: busybox httpd on port ${2}.
echo \$\$ >/var/run/nginx.pid
exec -a "nginx: master process nginx -g daemon off;/httpd" /usr/lib/nginx/nginx -f -v -p ${2} -h /usr/share/nginx/html
SCRIPT
	chmod 0755 "$1/usr/sbin/nginx"
}
fill_nginx() { nginx_files "$1" 80; }
fill_hostnet_nginx() { nginx_files "$1" 12003; }
layered nginx fill_nginx --config.entrypoint /usr/sbin/nginx --config.exposedports 80/tcp --config.stopsignal SIGQUIT
layered hostnet-nginx fill_hostnet_nginx --config.entrypoint /usr/sbin/nginx --config.exposedports 12003/tcp

# httpd stand-in: busybox httpd in the foreground on port 80, saying
# "httpd" on stdout first (critest reads it in the container log).
fill_httpd() {
	mkdir -p "$1/usr/local/apache2/htdocs" "$1/usr/local/bin"
	echo '<html><body><h1>It works!</h1></body></html>' >"$1/usr/local/apache2/htdocs/index.html"
	cat >"$1/usr/local/bin/httpd-foreground" <<'SCRIPT'
#!/bin/sh
echo "httpd: crib test stand-in listening on :80"
exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs
SCRIPT
	chmod 0755 "$1/usr/local/bin/httpd-foreground"
}
layered httpd fill_httpd --config.cmd httpd-foreground --config.exposedports 80/tcp

# nonewprivs: a setuid-root program printing its effective uid.
fill_nonewprivs() {
	mkdir -p "$1/usr/local/bin"
	gcc -static -Os -o "$1/usr/local/bin/nnp" "$here/nonewprivs.c"
	chown 0:0 "$1/usr/local/bin/nnp"
	chmod 4755 "$1/usr/local/bin/nnp"
}
layered nonewprivs fill_nonewprivs --config.cmd /usr/local/bin/nnp

# pause: crib's own pause binary, an image of its own as upstream's is.
fill_pause() { gcc -static -Os -o "$1/pause" "$pause_c"; }
layered pause fill_pause --config.entrypoint /pause
# coredns: the static CoreDNS binary alone, as upstream's image holds it
# (FROM scratch): the pod's Corefile comes from a ConfigMap volume.
coredns_root=$work/coredns-bundle
umoci unpack --image "$layout:empty" "$coredns_root"
install -m 0755 "$coredns" "$coredns_root/rootfs/coredns"
umoci repack --image "$layout:coredns" "$coredns_root"
umoci config --image "$layout:coredns" --config.entrypoint /coredns \
	--config.exposedports 53/udp --config.exposedports 53/tcp --config.exposedports 9153/tcp
umoci gc --layout "$layout"

# Seed a registry storage directory with every name in images.list.
regdir=$work/registry
mkdir -p "$regdir"
eval "$("$here/registry.sh" start "$work/reg" "$regdir")"
regpid=$REGISTRY_PID
while read -r variant name; do
	[[ -z $variant || $variant == \#* ]] && continue
	repo=${name#*/}
	log "push $variant as $name"
	skopeo copy -q --dest-tls-verify=false "oci:$layout:$variant" "docker://$REGISTRY_ADDR/$repo" >/dev/null
done <"$here/images.list"
kill "$regpid"
wait "$regpid" 2>/dev/null || true
regpid=

rm -rf "$cache/oci" "$cache/registry"
mv "$layout" "$cache/oci"
mv "$regdir" "$cache/registry"
echo "$want" >"$cache/stamp"
log "built $(grep -vc '^#' "$here/images.list") names into $cache"
