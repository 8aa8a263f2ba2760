#!/usr/bin/env bash
# Hot standby test: a streaming replica of the cluster in PGHOST/PGPORT, made with pg_basebackup and
# started as postgres on its own port. On the replica, as the application role: authenticate and
# set_context work (the context is a setting, not a write), protected tables show only the context's
# tenant and nothing without one, rls_coverage answers, and writes fail with PostgreSQL's read-only
# error (25006). The audit trail reads and verifies on the replica; recording fails there with 25006,
# and a failed authentication is refused as on the primary (its event is not recorded, and counted).
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
port=${WARDEN_STANDBY_PORT:-54331}
dir=$WARDEN_RUN/standby
primary_port=$PGPORT primary_host=$PGHOST

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS ops_standby" -c "CREATE DATABASE ops_standby"
psql -X -q -d ops_standby -c "CREATE EXTENSION warden"
load_fixture ops_standby
psql -X -q -d ops_standby -c "SELECT warden.enable_audit('docs')" \
    -c "UPDATE docs SET title = title || '.'" -c "SELECT warden.seal_audit()" >/dev/null

# an API key and an encrypted value made on the primary, for the replica checks below
api_key=$(q ops_standby postgres "SELECT warden.set_context('$GLOBEX', '$ACTOR', 'admin'); SELECT warden.create_api_key('replica', 'read', '{*:*:read}')" | tail -1)
sealed=$(q ops_standby postgres "SELECT warden.set_context('$GLOBEX', '$ACTOR', 'admin'); SELECT warden.create_key('standby'); SELECT encode(warden.encrypt('on both'::text, 'standby'), 'hex')" | tail -1)
cluster_stop standby
port=$(free_port "$port")
rm -rf "$dir" && mkdir -p "$dir/sock" && chown -R postgres:postgres "$dir" && chmod 0700 "$dir"
as_pg "$PGBIN/pg_basebackup" -h "$primary_host" -p "$primary_port" -U postgres -D "$dir/data" -R -X stream -c fast
cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir/sock'
hot_standby = on
CONF
cluster_pg_ctl_start "$dir" "$port"
export PGHOST=$dir/sock PGPORT=$port

check "the replica is in recovery" "t" "$(q ops_standby postgres "SELECT pg_is_in_recovery()")"
check "the replica preloads warden" "warden" "$(q ops_standby postgres "SHOW shared_preload_libraries")"
# a change on the primary reaches the replica
PGHOST=$primary_host PGPORT=$primary_port q ops_standby postgres \
    "INSERT INTO docs (tenant_id, title) OVERRIDING SYSTEM VALUE VALUES ('$ACME', 'replicated') RETURNING 1" >/dev/null
for _ in $(seq 100); do
    [ "$(q ops_standby postgres "SELECT count(*) FROM docs WHERE title = 'replicated'")" = 1 ] && break; sleep 0.1
done
check "a row written on the primary is replayed" "1" "$(q ops_standby postgres "SELECT count(*) FROM docs WHERE title = 'replicated'")"
PGHOST=$primary_host PGPORT=$primary_port q ops_standby postgres "DELETE FROM docs WHERE title = 'replicated'" >/dev/null
for _ in $(seq 100); do
    [ "$(q ops_standby postgres "SELECT count(*) FROM docs WHERE title = 'replicated'")" = 0 ] && break; sleep 0.1
done

attack_run "standby" ops_standby read-only
check "set_context works on the replica for the middleware role" "$GLOBEX|2" "$(qf ops_standby ops_middleware <<SQL | paste -sd'|'
BEGIN;
SELECT warden.set_context('$GLOBEX', '$ACTOR', 'read') \\g /dev/null
SELECT warden.current_tenant();
SELECT count(*) FROM docs;
COMMIT;
SQL
)"
check "rls_coverage answers on the replica" "docs|t
events|t
events_2025|t
events_2026|t
secrets|f" "$(q ops_standby ops_app "SELECT table_name, protected FROM warden.rls_coverage ORDER BY 1")"
check "guard_schema is a write: read-only error on the replica" "ERROR 25006" \
    "$(q ops_standby postgres "SELECT warden.guard_schema('public')")"
check "protect_table is a write: read-only error on the replica" "ERROR 25006" \
    "$(q ops_standby postgres "SET ROLE ops_owner; SELECT warden.protect_table('vault.secrets')")"
check "unguard_schema and unprotect_table: read-only error on the replica" "ERROR 25006|ERROR 25006" \
    "$(q ops_standby postgres "SELECT warden.unguard_schema('vault')")|$(q ops_standby postgres "SET ROLE ops_owner; SELECT warden.unprotect_table('docs')")"
# the writes above were audited too: seal them on the primary, then wait for the replica to replay
primary_digest=$(PGHOST=$primary_host PGPORT=$primary_port q ops_standby postgres \
    "SELECT warden.seal_audit(); SELECT id || ':' || encode(hash, 'hex') FROM warden.audit_digest()" | tail -1)
digest_sql="SELECT id || ':' || encode(hash, 'hex') FROM warden.audit_digest()"
for _ in $(seq 100); do [ "$(q ops_standby postgres "$digest_sql")" = "$primary_digest" ] && break; sleep 0.1; done
check "the audit chain verifies on the replica, with the primary's digest" "t|$primary_digest" \
    "$(q ops_standby postgres "SELECT intact FROM warden.verify_audit()")|$(q ops_standby postgres "$digest_sql")"
check "warden_auditor reads the trail on the replica" "t" \
    "$(q ops_standby postgres "SET ROLE warden_auditor; SELECT count(*) > 0 FROM warden.audit_trail")"
check "log_event and enable_audit are writes: read-only error on the replica" "ERROR 25006|ERROR 25006" \
    "$(q ops_standby postgres "SELECT warden.log_event('x', 'y', 'z')")|$(q ops_standby postgres "SELECT warden.enable_audit('docs')")"
check "a failed authentication on the replica is refused, and counted as not recorded" "ERROR 28000|t" \
    "$(q ops_standby ops_app "SELECT warden.authenticate('not.a.token')")|$(q ops_standby postgres "SELECT unrecorded > 0 FROM warden.audit_queue_status()")"
check "an API key authenticates on the replica (its last use is not written there)" "$GLOBEX|2" \
    "$(q ops_standby ops_app "SELECT warden.authenticate_key('$api_key'); SELECT warden.current_tenant(); SELECT count(*) FROM docs" | grep . | paste -sd'|')"
check "the replica decrypts what the primary encrypted" "on both" \
    "$(q ops_standby ops_app "SELECT warden.authenticate_key('$api_key'); SELECT warden.decrypt_text(decode('$sealed', 'hex'))" | tail -1)"
check "key management and classification are writes: read-only error on the replica" "ERROR 25006|ERROR 25006" \
    "$(q ops_standby postgres "SELECT warden.set_context('$GLOBEX', '$ACTOR', 'admin'); SELECT warden.create_api_key('x', 'read', '{*:*:read}')" | tail -1)|$(q ops_standby postgres "SELECT warden.classify('docs', 'INTERNAL')")"
check "the replica's log has no crash" "" "$(grep -E 'terminated by signal|PANIC' "$dir/server.log" || true)"
as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
ops_summary standby
