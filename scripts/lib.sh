# Shared helpers for warden's scripts: scratch PostgreSQL 15 clusters run as the postgres user,
# on a private port on 127.0.0.1 and a Unix socket in a private directory. Source it; don't run it.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PGBIN=$($PG_CONFIG --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
export PATH="$HOME/.cargo/bin:$PATH"
# Everything scratch lives under here (data directories, sockets, logs, secrets).
WARDEN_RUN=${WARDEN_RUN:-/tmp/warden-run}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\033[1m[warden]\033[0m %s\n' "$*"; }
as_pg() { sudo -u postgres -- "$@"; }

# A library that a running server has mapped must never be written in place: every process that has
# it mapped would execute the changed bytes (the postmaster too, since warden is preloaded), crash, and
# take the cluster down. Files are therefore installed under a temporary name in the target directory
# and renamed over the old one: rename(2) is atomic, and the old inode lives on, unchanged, for as long
# as a process still maps it.

# install_file SRC DEST: atomic replacement of DEST by a copy of SRC.
install_file() {
    local src=$1 dest=$2 tmp
    tmp="$(dirname "$dest")/.$(basename "$dest").new.$$"
    install -m "$( [[ $dest == *.so ]] && echo 0755 || echo 0644 )" "$src" "$tmp"
    mv -f "$tmp" "$dest"
}

# install_tree DIR: installs a package tree made by `cargo pgrx package` (DIR/<pkglibdir>/warden.so,
# DIR/<sharedir>/extension/warden*) and the kept install scripts of released versions (sql/released/),
# so that CREATE EXTENSION warden VERSION '<older>' and ALTER EXTENSION warden UPDATE work.
install_tree() {
    local tree=$1 pkglib ext f
    pkglib=$($PG_CONFIG --pkglibdir)
    ext=$($PG_CONFIG --sharedir)/extension
    test -f "$tree$pkglib/warden.so" || { say "no warden.so in $tree$pkglib"; return 1; }
    install_file "$tree$pkglib/warden.so" "$pkglib/warden.so"
    for f in "$tree$ext"/warden.control "$tree$ext"/warden--*.sql; do
        install_file "$f" "$ext/$(basename "$f")"
    done
    for f in "$ROOT"/sql/released/warden--*.sql; do
        # the current version's script is the one just built; the kept copy only checks it
        [ -f "$ext/$(basename "$f")" ] && [ "$(basename "$f")" = "warden--$(warden_version).sql" ] && continue
        install_file "$f" "$ext/$(basename "$f")"
    done
}

warden_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1; }

# set_library_aside: before a command that installs warden.so itself (`cargo pgrx test` does), the
# installed library is renamed, so that the command writes a new file instead of the one running
# servers have mapped. clean_set_aside removes the renamed files (unlinking a mapped file is safe).
set_library_aside() {
    local lib
    lib=$($PG_CONFIG --pkglibdir)/warden.so
    [ -f "$lib" ] && mv -f "$lib" "$lib.replaced.$$" || true
}
clean_set_aside() { rm -f "$($PG_CONFIG --pkglibdir)"/warden.so.replaced.*; }

# timed LABEL CMD...: runs CMD, printing what it is doing and how long it took, with cargo's own
# progress lines (Compiling, Finished, Installing) so that a first build visibly makes progress.
timed() {
    local label=$1 start=$SECONDS rc
    shift
    say "$label"
    set +e
    "$@" 2>&1 | grep --line-buffered -E '^ *(Compiling|Finished|Installing|Copying|Building|Discovering|Writing|error|warning)' \
        | sed -u 's/^ */    /'
    rc=${PIPESTATUS[0]}
    set -e
    say "$label: $( [ "$rc" -eq 0 ] && echo done || echo FAILED ) in $((SECONDS - start)) s"
    return "$rc"
}

# install_extension [--release]: build warden (dev profile unless --release), package it under
# target/, and install the package into the Debian PostgreSQL 15 with install_tree.
install_extension() {
    local profile=--debug dir=debug
    [ "${1:-}" = "--release" ] && { profile=; dir=release; }
    local tree=$ROOT/target/$dir/warden-pg15
    timed "building warden ($dir profile; the first build takes a few minutes)" \
        bash -c "cd '$ROOT' && cargo pgrx package --pg-config '$PG_CONFIG' $profile --out-dir '$tree'"
    install_tree "$tree"
    say "installed warden $(warden_version) into $($PG_CONFIG --pkglibdir) and $($PG_CONFIG --sharedir)/extension"
}

# port_in_use PORT: whether something accepts connections on 127.0.0.1:PORT, or a server could not
# bind it (as PostgreSQL does, with SO_REUSEADDR): a client connection that used the port as its
# ephemeral local port and lingers in TIME_WAIT blocks a listener for a minute.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    ! python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)' "$1" 2>/dev/null
}

# free_port PORT: PORT, or the next port above it that nothing listens on (another job on the same
# machine may hold the usual one). Prints the port.
free_port() {
    local p=$1
    while port_in_use "$p"; do
        say "port $p is in use; trying $((p + 1))" >&2
        p=$((p + 1))
        [ "$p" -lt $(( $1 + 50 )) ] || { say "no free port near $1" >&2; return 1; }
    done
    echo "$p"
}

# cluster_start NAME PORT: a fresh cluster (any previous one of that NAME is removed), on PORT or,
# when that is taken, the next free port (callers read PGPORT, not their own variable).
# Sets CLUSTER_DIR, PGHOST, PGPORT, PGUSER and WARDEN_JWT_SECRET for the caller. CLUSTER_PRELOAD
# (default warden) is its shared_preload_libraries.
cluster_start() {
    local name=$1 port=$2
    CLUSTER_DIR=$WARDEN_RUN/$name
    cluster_stop "$name"
    port=$(free_port "$port")
    rm -rf "$CLUSTER_DIR"
    mkdir -p "$CLUSTER_DIR/sock"
    chown -R postgres:postgres "$WARDEN_RUN"
    chmod 0711 "$WARDEN_RUN"
    chmod 0700 "$CLUSTER_DIR"
    WARDEN_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 48)
    as_pg "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust --no-instructions -E UTF8 --locale=C.UTF-8 >/dev/null
    # the master key of warden.encrypt: outside the data directory, readable by the server only
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$CLUSTER_DIR/master.key"
    chown postgres:postgres "$CLUSTER_DIR/master.key"
    chmod 0400 "$CLUSTER_DIR/master.key"
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CLUSTER_DIR/sock'
shared_preload_libraries = '${CLUSTER_PRELOAD-warden}'
warden.jwt_secret = '$WARDEN_JWT_SECRET'
warden.master_key_file = '$CLUSTER_DIR/master.key'
max_connections = 200
fsync = off
log_min_messages = warning
CONF
    cluster_pg_ctl_start "$CLUSTER_DIR" "$port"
    export PGHOST=$CLUSTER_DIR/sock PGPORT=$port PGUSER=postgres WARDEN_JWT_SECRET
}

# cluster_pg_ctl_start DIR PORT: starts the cluster in DIR; when it does not come up, prints why
# (the end of its server log, and whatever holds the port) and tries once more after a pause, since
# a port another process is just giving up is the usual transient cause on a busy machine.
cluster_pg_ctl_start() {
    local dir=$1 port=$2 attempt
    for attempt in 1 2; do
        if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 start >/dev/null; then
            return 0
        fi
        say "the cluster in $dir (port $port) did not start (attempt $attempt); its log ends with:"
        tail -n 25 "$dir/server.log" 2>/dev/null | sed 's/^/    /' || true
        (ss -ltnp 2>/dev/null || netstat -ltnp 2>/dev/null || true) | grep -E ":$port\b" | sed 's/^/    port in use: /' || true
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
        sleep 5
    done
    return 1
}

cluster_stop() {
    local dir=$WARDEN_RUN/$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
