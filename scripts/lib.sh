# Shared helpers for warden's scripts: scratch PostgreSQL 15 clusters run as the postgres user,
# on a private port on 127.0.0.1 and a Unix socket in a private directory. Source it; don't run it.
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PGBIN/pg_config
export PATH="$HOME/.cargo/bin:$PATH"
# Everything scratch lives under here (data directories, sockets, logs, secrets).
WARDEN_RUN=${WARDEN_RUN:-/tmp/warden-run}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '\033[1m[warden]\033[0m %s\n' "$*"; }
as_pg() { sudo -u postgres -- "$@"; }

# install_extension [--release]: build warden and install it into the Debian PostgreSQL 15.
install_extension() {
    say "building and installing the extension (cargo pgrx install $*)"
    (cd "$ROOT" && cargo pgrx install --pg-config "$PG_CONFIG" "$@" 2>&1 | grep -E '^(error|warning)|Finished|Installing extension' || true)
    test -f "$($PG_CONFIG --pkglibdir)/warden.so" || { say "install failed"; exit 1; }
}

# cluster_start NAME PORT: a fresh cluster (any previous one of that NAME is removed).
# Sets CLUSTER_DIR, PGHOST, PGPORT, PGUSER and WARDEN_JWT_SECRET for the caller.
cluster_start() {
    local name=$1 port=$2
    CLUSTER_DIR=$WARDEN_RUN/$name
    cluster_stop "$name"
    rm -rf "$CLUSTER_DIR"
    mkdir -p "$CLUSTER_DIR/sock"
    chown -R postgres:postgres "$WARDEN_RUN"
    chmod 0711 "$WARDEN_RUN"
    chmod 0700 "$CLUSTER_DIR"
    WARDEN_JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 48)
    as_pg "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust --no-instructions -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$CLUSTER_DIR/sock'
shared_preload_libraries = 'warden'
warden.jwt_secret = '$WARDEN_JWT_SECRET'
max_connections = 200
fsync = off
log_min_messages = warning
CONF
    as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -t 60 start >/dev/null
    export PGHOST=$CLUSTER_DIR/sock PGPORT=$port PGUSER=postgres WARDEN_JWT_SECRET
}

cluster_stop() {
    local dir=$WARDEN_RUN/$1
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}
