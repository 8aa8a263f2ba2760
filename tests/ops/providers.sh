#!/usr/bin/env bash
# Identity providers over real connections (tests/ops/providers.py): tokens minted by PyJWT in each
# provider's shape, the attacks, rotation through scripts/sync_jwks.py against a local HTTP server,
# revoke_tokens through PgBouncer, and warden.require_tls on a cluster with a self-signed certificate.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
source "$ROOT/scripts/pgbouncer.sh"
port=${WARDEN_PROVIDERS_PORT:-54337}

cluster_start providers "$port"
trap 'pgbouncer_stop; cluster_stop providers' EXIT
# a real (self-signed) certificate: TLS for TCP connections that ask for it, none for the others
openssl req -new -x509 -days 2 -nodes -subj "/CN=127.0.0.1" -keyout "$CLUSTER_DIR/server.key" \
    -out "$CLUSTER_DIR/server.crt" >/dev/null 2>&1
chown postgres:postgres "$CLUSTER_DIR/server.key" "$CLUSTER_DIR/server.crt"
chmod 0600 "$CLUSTER_DIR/server.key"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$CLUSTER_DIR/server.crt'
ssl_key_file = '$CLUSTER_DIR/server.key'
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
CREATE DATABASE providers;
\c providers
CREATE EXTENSION warden;
CREATE ROLE it_app LOGIN;
CREATE ROLE it_middleware LOGIN IN ROLE warden_context_setter;
SQL
bouncer=$(free_port "${WARDEN_PGBOUNCER_PORT:-64337}")
pgbouncer_start "$bouncer" providers
BOUNCER_PORT=$bouncer ROOT=$ROOT python3 "$ROOT/tests/ops/providers.py"
