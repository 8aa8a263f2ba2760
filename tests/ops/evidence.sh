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

# DROP DATABASE of a database under a hold, from another database
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE held" -c "CREATE DATABASE unheld" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d held >/dev/null <<SQL
CREATE EXTENSION warden;
CREATE TABLE docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
INSERT INTO docs VALUES (1, '$ACME', 'the original evidence');
SELECT warden.protect_table('docs');
SELECT warden.place_hold('CASE-DB-1', 'litigation', '$ACME');
SQL
q unheld postgres "CREATE EXTENSION warden" >/dev/null
check "DROP DATABASE of a held database is refused" "ERROR 42501" "$(q unheld postgres "DROP DATABASE held")"
out=$(psql -X -d unheld -c "DROP DATABASE held" 2>&1 || true)
check "the refusal names the case" yes "$(grep -q 'legal hold "CASE-DB-1" covers data in it' <<<"$out" && echo yes || echo no)"
check "WITH (FORCE) too" "ERROR 42501" "$(q postgres postgres "DROP DATABASE held WITH (FORCE)")"
check "the refusal is in the issuing database's trail" yes \
    "$(for _ in $(seq 50); do n=$(q unheld postgres "SELECT count(*) FROM warden.audit_trail WHERE action = 'hold_violation' AND resource_id = 'held'"); [ "$n" -ge 1 ] && break; sleep 0.1; done; [ "$n" -ge 1 ] && echo yes || echo no)"
check "and in the server log" yes "$(grep -q 'warden: DROP DATABASE held refused: legal hold "CASE-DB-1"' "$LOG" && echo yes || echo no)"
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -w restart -l "$LOG" >/dev/null
check "after a restart, with no backend connected to it since, still refused" "ERROR 42501" "$(q postgres postgres "DROP DATABASE held")"
check "a database without a hold drops" "" "$(q postgres postgres "DROP DATABASE unheld")"
check "a second hold, then one released: still refused" "ERROR 42501" \
    "$(q held postgres "SELECT warden.place_hold('CASE-DB-2', 'audit', '$GLOBEX')" >/dev/null
       q held postgres "SELECT warden.release_hold(id, 'settled') FROM warden.holds WHERE case_ref = 'CASE-DB-1'" >/dev/null
       q postgres postgres "DROP DATABASE held")"
check "a release rolled back leaves the hold (and its marker)" "ERROR 42501" \
    "$(q held postgres "BEGIN; SELECT warden.release_hold(id, 'x') FROM warden.holds WHERE case_ref = 'CASE-DB-2'; ROLLBACK;" >/dev/null
       q postgres postgres "DROP DATABASE held")"
# a marker lost (holds placed before 0.7, a restored dump): the database's next read of its holds writes it
rm -f "$CLUSTER_DIR/data/warden_holds/$(q postgres postgres "SELECT oid FROM pg_database WHERE datname = 'held'")"
q held postgres "DELETE FROM docs WHERE false" >/dev/null || true   # refused (no context), after reading the holds
check "a lost marker is written again when the database reads its holds" "ERROR 42501" "$(q postgres postgres "DROP DATABASE held")"
q held postgres "SELECT warden.release_hold(id, 'settled') FROM warden.holds h WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold = h.id)" >/dev/null
check "once the last hold is released, the drop works" "" "$(q postgres postgres "DROP DATABASE held")"
# security_lint: the audit chain's last verification and digest (notes the sealing worker writes)
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE posture" >/dev/null
q posture postgres "CREATE EXTENSION warden" >/dev/null
q posture postgres "SELECT warden.log_event('posture_test', 'test', '1')" >/dev/null
traces="SELECT string_agg(rule || ':' || severity, ',' ORDER BY rule) FROM warden.security_lint() WHERE rule IN ('audit_not_verified', 'digest_not_anchored')"
check "never verified, never anchored: both rules fire" "audit_not_verified:medium,digest_not_anchored:medium" "$(q posture postgres "$traces")"
q posture postgres "SELECT warden.seal_audit()" >/dev/null
q posture postgres "SELECT intact FROM warden.verify_audit()" >/dev/null
q posture postgres "SELECT id FROM warden.audit_digest()" >/dev/null
for _ in $(seq 100); do [ "$(q posture postgres "SELECT count(*) FROM warden.posture_checks")" = 2 ] && break; sleep 0.1; done
check "after verify_audit and audit_digest (as the worker notes them): quiet" "" "$(q posture postgres "$traces")"
check "the notes are not audit events (verifying does not change the chain)" "0" \
    "$(q posture postgres "SELECT count(*) FROM warden.audit_trail WHERE action IN ('verify_audit', 'audit_digest', 'posture_check')")"
sleep 1.2
check "older than warden.audit_check_age: both fire again" "audit_not_verified:medium,digest_not_anchored:medium" \
    "$(q posture postgres "SET warden.audit_check_age = 1; $traces" | tail -1)"
# a tampered chain: the last verification found it broken (critical)
q posture postgres "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'warden.audit_events'::regclass;
                    UPDATE pg_catalog.pg_class SET relhastriggers = relhastriggers WHERE oid = 'warden.audit_events'::regclass;
                    UPDATE warden.audit_events SET resource_id = 'x' WHERE action = 'posture_test'" >/dev/null
q posture postgres "SELECT intact FROM warden.verify_audit()" >/dev/null
for _ in $(seq 100); do [ "$(q posture postgres "SELECT last_result FROM warden.posture_checks WHERE check_name = 'verify_audit'")" = broken ] && break; sleep 0.1; done
check "a verification that found the chain broken: critical" "audit_not_verified:critical" \
    "$(q posture postgres "SELECT string_agg(rule || ':' || severity, ',') FROM warden.security_lint() WHERE rule = 'audit_not_verified'")"
ops_summary evidence
