# tools.sh is sourced by the scripts/build-*.sh that build a tool from a Go
# module's source into the tool cache. The caller defines log() first.

# tool_lock takes the cache lock of one tool version, $1 (the cache dir of
# that version): one build at a time, a parallel run waits, then reuses. The
# lock is held until the calling script exits.
tool_lock() {
	mkdir -p "$(dirname "$1")"
	exec {tool_lock_fd}>"$1.lock"
	flock "$tool_lock_fd"
}

# module_copy downloads module $1 at version $2 through the Go module proxy
# and copies it, writable, to $3. $4 is a path inside the module that must
# exist (a check that the download is the module meant). The copy keeps the
# module's vendor dir; it drops go.work files, which name paths that are not
# there. `go install module@version` is refused by the filtered proxy;
# building a copy of the module as the main module is not.
module_copy() {
	local module=$1 ver=$2 dest=$3 marker=$4 json moddir
	log "downloading $module@$ver"
	if ! json=$(cd "$(dirname "$dest")" && GOFLAGS=-mod=mod go mod download -json "$module@$ver"); then
		log "go mod download $module@$ver failed:"
		printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' >&2
		exit 1
	fi
	moddir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
	if [[ -z $moddir || ! -e $moddir/$marker ]]; then
		log "go mod download gave no module dir for $module@$ver (${moddir:-none}, no $marker)"
		exit 1
	fi
	cp -r "$moddir" "$dest"
	chmod -R u+w "$dest"
	rm -rf "$dest/go.work" "$dest/go.work.sum"
}
