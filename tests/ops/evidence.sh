#!/usr/bin/env bash
# Evidence that stays evidence, on a real cluster: DROP EXTENSION warden refused while the trail
# holds events younger than warden.audit_retention, also for a superuser; warden.allow_evidence_drop
# cannot be SET, only configured, and a drop it allows is written to the server log; after a purge
# of everything older than the retention the drop needs nothing.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
port=${WARDEN_EVIDENCE_PORT:-54339}

cluster_start evidence "$port"
trap 'cluster_stop evidence' EXIT
LOG=$CLUSTER_DIR/server.log
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE ev" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d ev >/dev/null <<SQL
CREATE EXTENSION warden;
SELECT warden.log_event('evidence_test', 'test', '1');
SQL
check "DROP EXTENSION warden CASCADE with young events, as a superuser" "ERROR 42501" \
    "$(q ev postgres "DROP EXTENSION warden CASCADE")"
check "DROP SCHEMA warden CASCADE" "ERROR 42501" "$(q ev postgres "DROP SCHEMA warden CASCADE")"
check "the break-glass setting cannot be SET" "ERROR 55P02" "$(q ev postgres "SET warden.allow_evidence_drop = on")"
check "nor stored for a database" "ERROR 55P02" "$(q ev postgres "ALTER DATABASE ev SET warden.allow_evidence_drop = on")"
check "the refusals are on record" 2 \
    "$(q ev postgres "SELECT count(*) FROM (SELECT action FROM warden.audit_events UNION ALL SELECT action FROM warden.audit_pending) e WHERE action = 'evidence_protected'")"

# break-glass: in the server's configuration, then reloaded
psql -X -q -d postgres -c "ALTER SYSTEM SET warden.allow_evidence_drop = on" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
start=$(wc -l <"$LOG")
check "with warden.allow_evidence_drop on in the configuration, the drop goes through" "" \
    "$(q ev postgres "DROP EXTENSION warden CASCADE" 2>&1 | grep -v '^WARNING' || true)"
check "and the server log says who dropped it and that the trail was young" yes \
    "$(tail -n +"$((start + 1))" "$LOG" | grep -q 'warden: DROP EXTENSION on extension warden by role "postgres" allowed by warden.allow_evidence_drop (the trail holds events younger than warden.audit_retention)' && echo yes || echo no)"
psql -X -q -d postgres -c "ALTER SYSTEM RESET warden.allow_evidence_drop" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5

# the ordinary way: purge what the retention allows, then drop
q ev postgres "CREATE EXTENSION warden" >/dev/null
q ev postgres "SELECT warden.log_event('evidence_test', 'test', '2')" >/dev/null
check "refused again once the setting is reset" "ERROR 42501" "$(q ev postgres "DROP EXTENSION warden CASCADE")"
sleep 1.2
psql -X -q -d ev -c "ALTER DATABASE ev SET warden.audit_retention = 1" >/dev/null
q ev postgres "SELECT warden.purge_audit()" >/dev/null
# the purge's own event, and the refusal's, must age past the retention and be sealed
for _ in $(seq 50); do
    [ "$(q ev postgres "SELECT count(*) FROM warden.audit_pending")" = 0 ] && break
    sleep 0.1
done
sleep 1.2
check "after a purge under a retention the trail has outlived, DROP EXTENSION needs nothing" "" \
    "$(q ev postgres "DROP EXTENSION warden CASCADE")"
ops_summary evidence
