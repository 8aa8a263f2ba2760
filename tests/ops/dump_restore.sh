#!/usr/bin/env bash
# Dump and restore test: pg_dump of a database using warden (cluster in PGHOST/PGPORT), pg_restore
# into a new database on another cluster (its own secret). Protected tables are still protected
# (rls_coverage identical), the guarded schema still guarded (warden.guarded_schemas is an extension
# configuration table and is dumped), data visible only with a context, and the event trigger works.
# The audit trail is in the dump: the restored chain verifies and has the same digest, and the
# digest taken before the dump still holds.
# Every table warden owns must be dumped: the check at the end lists them and fails on any that is
# not marked with pg_extension_config_dump.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
port=${WARDEN_RESTORE_PORT:-54332}
dump=$WARDEN_RUN/ops_dump.dump
coverage="SELECT schema_name, table_name, kind, rls_enabled, rls_forced, policy_count, protected, coalesce(problem, '-') FROM warden.rls_coverage ORDER BY 1, 2"
guarded="SELECT schema_name, guarded_by FROM warden.guarded_schemas ORDER BY 1"

drop_db ops_dump
psql -X -q -d postgres -c "CREATE DATABASE ops_dump"
psql -X -q -d ops_dump -c "CREATE EXTENSION warden"
load_fixture ops_dump
q ops_dump postgres "CREATE TABLE public.unprotected (id int)" >/dev/null
qf ops_dump postgres >/dev/null <<'SQL'
SELECT warden.enable_audit('docs');
SELECT warden.enable_audit('events');
UPDATE docs SET title = title || ' (edited)';
UPDATE events SET what = what || '!' WHERE what IN ('a', 'f');
SELECT warden.log_event('export', 'report', 'r-1', '{"rows": 3}');
-- legal holds, personal data, consent and a deleted account (tenant cccc..., which the attacks leave alone)
CREATE TABLE people (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, email text);
INSERT INTO people VALUES ('cccccccc-0000-0000-0000-000000000001', 'cccccccc-0000-0000-0000-00000000000c', 'p1@example.com');
INSERT INTO docs (tenant_id, title) VALUES ('cccccccc-0000-0000-0000-00000000000c', 'initech 1');
SELECT warden.protect_table('people');
SELECT warden.register_personal_data('people', 'id', '{email}', 'hash');
SELECT warden.place_hold('OPS-HOLD', 'dump test', 'cccccccc-0000-0000-0000-00000000000c');
SELECT warden.release_hold(warden.place_hold('OPS-OLD', 'released before the dump', 'cccccccc-0000-0000-0000-00000000000c'), 'done');
-- an update of a held row: its prior version is kept (0.7.0)
UPDATE docs SET title = 'initech 1 (rewritten)' WHERE title = 'initech 1';
BEGIN;
SELECT warden.set_context('cccccccc-0000-0000-0000-00000000000c', 'cccccccc-0000-0000-0000-000000000001', 'write');
SELECT warden.record_consent('cccccccc-0000-0000-0000-000000000001', 'marketing', true, 'form');
COMMIT;
INSERT INTO warden.deleted_accounts VALUES ('cccccccc-0000-0000-0000-000000000009', now(), NULL, 'ops test');
-- encryption, secrets, classification (0.5.0)
CREATE TABLE cards (id int PRIMARY KEY, tenant_id uuid NOT NULL, number bytea);
SELECT warden.protect_table('cards');
SELECT warden.enable_audit('cards');
SELECT warden.classify('cards', 'CONFIDENTIAL');
-- a PHI table: pg_dump's read of it is on record
CREATE TABLE charts (id int PRIMARY KEY, tenant_id uuid NOT NULL, dx text);
INSERT INTO charts SELECT g, 'cccccccc-0000-0000-0000-00000000000c', 'dx' FROM generate_series(1, 3) g;
SELECT warden.protect_table('charts');
SELECT warden.enable_audit('charts');
SELECT warden.classify('charts', 'PHI');
BEGIN;
SELECT warden.set_context('cccccccc-0000-0000-0000-00000000000c', 'cccccccc-0000-0000-0000-000000000001', 'admin');
SELECT warden.create_key('cards');
INSERT INTO cards VALUES (1, 'cccccccc-0000-0000-0000-00000000000c', warden.encrypt('4111 1111 1111 1111'::text, 'cards', '1'));
SELECT warden.put_secret('smtp', 'hunter2');
COMMIT;
SELECT warden.seal_audit();
SQL
api_key=$(q ops_dump postgres "SELECT warden.set_context('cccccccc-0000-0000-0000-00000000000c', 'cccccccc-0000-0000-0000-000000000001', 'admin'); SELECT warden.create_api_key('ops', 'read', '{*:*:*}')" | tail -1)
check "an API key was created before the dump" "t" "$([[ $api_key == wdn_* ]] && echo t || echo "$api_key")"
q ops_dump postgres "SELECT warden.seal_audit()" >/dev/null
src_master_key=$(q ops_dump postgres "SHOW warden.master_key_file")
classified="SELECT string_agg(target || ':' || level || ':' || compliant, ',' ORDER BY target) FROM warden.classifications"
src_classified=$(q ops_dump postgres "$classified")
preserved="SELECT string_agg(table_name || ':' || (old_row ->> 'title') || ':' || array_to_string(case_refs, '+'), ',' ORDER BY id) FROM warden.preserved_versions"
src_preserved=$(q ops_dump postgres "$preserved")
check "a held row's prior version is kept before the dump" "public.docs:initech 1:OPS-HOLD" "$src_preserved"
privacy="SELECT (SELECT string_agg(case_ref || ':' || active, ',' ORDER BY case_ref) FROM warden.legal_holds)
            || '|' || (SELECT string_agg(tbl::text || '.' || column_name || ':' || method, ',') FROM warden.personal_data)
            || '|' || (SELECT count(*) FROM warden.consents) || '|' || (SELECT count(*) FROM warden.deleted_accounts)"
src_privacy=$(q ops_dump postgres "$privacy")
digest="SELECT id || ':' || encode(hash, 'hex') FROM warden.audit_digest()"
src_digest=$(q ops_dump postgres "$digest")
src_events=$(q ops_dump postgres "SELECT count(*) FROM warden.audit_events")
check "the source database has sealed audit events" "t" "$( [ "${src_events:-0}" -ge 8 ] && echo t || echo "$src_events")"
src_coverage=$(q ops_dump postgres "$coverage")
src_guarded=$(q ops_dump postgres "$guarded")
indexes="SELECT string_agg(indexname, ', ' ORDER BY indexname) FROM pg_indexes WHERE schemaname IN ('public', 'vault')"
src_indexes=$(q ops_dump postgres "$indexes")
unmarked=$(q ops_dump postgres "SELECT string_agg(c.oid::regclass::text, ', ') FROM pg_class c
    JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'warden'
   WHERE c.relkind IN ('r', 'p', 'S') AND NOT c.oid = ANY (coalesce(e.extconfig, '{}'))")
check "every table and sequence warden owns is dumped (pg_extension_config_dump)" "" "$unmarked"

as_pg "$PGBIN/pg_dump" -h "$PGHOST" -p "$PGPORT" -U postgres -Fc -f "$dump.tmp" ops_dump && mv "$dump.tmp" "$dump"
phi_dumped="SELECT count(*) FROM warden.audit_trail WHERE action = 'phi_read' AND resource_id = 'public.charts'
               AND changes ->> 'rows' = '3' AND application_name = 'pg_dump' AND database_role = 'postgres'"
for _ in $(seq 50); do [ "$(q ops_dump postgres "$phi_dumped")" = 1 ] && break; sleep 0.1; done
check "pg_dump's read of the PHI table (COPY, read-only, as a superuser) is a phi_read event with its rows" 1 \
    "$(q ops_dump postgres "$phi_dumped")"
check "the dump holds the guarded schema's row" "1" \
    "$(as_pg "$PGBIN/pg_restore" -f - -a -t guarded_schemas "$dump" | grep -c '^vault	')"

cluster_start restore "$port"
psql -X -q -d postgres <<'SQL'
CREATE ROLE ops_owner NOLOGIN;
CREATE ROLE ops_app LOGIN;
CREATE ROLE ops_middleware LOGIN;
CREATE DATABASE ops_restored;
SQL
as_pg "$PGBIN/pg_restore" -h "$PGHOST" -p "$PGPORT" -U postgres -d ops_restored --exit-on-error "$dump" 2>&1 | sed 's/^/    /'
check "pg_restore succeeded" "0" "${PIPESTATUS[0]}"

check "the audit events are in the dump and restored (the restore itself records none)" "$src_digest" "$(q ops_restored postgres "$digest")"
check "the restored chain verifies" "t|$src_events|" "$(q ops_restored postgres "SELECT intact, checked, first_bad_id FROM warden.verify_audit()")"
check "the digest taken before the dump holds on the restored database" "t" \
    "$(q ops_restored postgres "SELECT holds FROM warden.verify_audit_digest(${src_digest%%:*}, '\\x${src_digest#*:}')")"
check "the restored tables are still audited" "cards|charts|docs|events" "$(q ops_restored postgres "SELECT string_agg(table_name, '|' ORDER BY 1) FROM warden.audited_tables WHERE partition_of IS NULL")"
check "rls_coverage is identical after the restore" "$src_coverage" "$(q ops_restored postgres "$coverage")"
check "the guarded schemas are restored" "$src_guarded" "$(q ops_restored postgres "$guarded")"
check "legal holds, releases, personal data, consents and deleted accounts are restored" \
    "OPS-HOLD:true,OPS-OLD:false|people.email:hash|1|1" "$(q ops_restored postgres "$privacy")"
check "...exactly as they were" "$src_privacy" "$(q ops_restored postgres "$privacy")"
check "the restored hold still refuses deleting held rows" "ERROR 42501" "$(qf ops_restored postgres <<'SQL' | tail -1
BEGIN;
SELECT warden.set_context('cccccccc-0000-0000-0000-00000000000c', 'cccccccc-0000-0000-0000-000000000001', 'admin');
DELETE FROM docs;
SQL
)"
check "an API key made before the dump authenticates on the restored database (its hash was dumped)" \
    "cccccccc-0000-0000-0000-00000000000c" \
    "$(q ops_restored ops_app "SELECT warden.authenticate_key('$api_key'); SELECT warden.current_tenant()" | tail -1)"
check "the classifications are restored" "$src_classified" "$(q ops_restored postgres "$classified")"
check "the preserved versions are restored" "$src_preserved" "$(q ops_restored postgres "$preserved")"
check "...and still append-only" "ERROR 42501" "$(q ops_restored postgres "DELETE FROM warden.preserved_versions")"
check "...and still enforced: the classified table cannot lose its audit trigger" "ERROR 55000" \
    "$(q ops_restored postgres "ALTER TABLE cards DISABLE TRIGGER warden_audit_row")"
decrypt="SELECT warden.set_context('cccccccc-0000-0000-0000-00000000000c', 'cccccccc-0000-0000-0000-000000000001', 'read');
         SELECT warden.decrypt_text(number, '1') FROM cards"
check "the dump alone decrypts nothing: the restored cluster has another master key" "ERROR 55000" \
    "$(q ops_restored postgres "$decrypt" | tail -1)"
check "...nor does it reveal a secret" "ERROR 55000" \
    "$(q ops_restored postgres "SELECT warden.set_context('cccccccc-0000-0000-0000-00000000000c', 'cccccccc-0000-0000-0000-000000000001', 'read'); SELECT warden.get_secret('smtp')" | tail -1)"
install -o postgres -m 0400 "$src_master_key" "$CLUSTER_DIR/master.key.source"
q postgres postgres "ALTER SYSTEM SET warden.master_key_file = '$CLUSTER_DIR/master.key.source'" >/dev/null
q postgres postgres "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
check "with the source's master key configured, the restored ciphertext decrypts" "4111 1111 1111 1111" \
    "$(q ops_restored postgres "$decrypt" | tail -1)"
check "...and the restored secret too" "hunter2" \
    "$(q ops_restored postgres "SELECT warden.set_context('cccccccc-0000-0000-0000-00000000000c', 'cccccccc-0000-0000-0000-000000000001', 'read'); SELECT warden.get_secret('smtp')" | tail -1)"
check "verify_holds finds nothing lost after the restore" "" \
    "$(q ops_restored postgres "SELECT string_agg(check_name, ', ') FROM warden.verify_holds() WHERE NOT ok")"
check "the same indexes after the restore (the event trigger adds none)" "$src_indexes" "$(q ops_restored postgres "$indexes")"
attack_run "restored" ops_restored
check "the restored schema is still guarded: a new table is deny-by-default" "t|t" "$(qf ops_restored postgres <<'SQL' | paste -sd'|'
SET ROLE ops_owner;
CREATE TABLE vault.after_restore (tenant_id uuid);
RESET ROLE;
SELECT rls_enabled, rls_forced FROM warden.rls_coverage WHERE relid = 'vault.after_restore'::regclass;
SQL
)"
check "a partition created after the restore is protected" "t" "$(qf ops_restored postgres <<'SQL'
SET ROLE ops_owner;
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
RESET ROLE;
SELECT protected FROM warden.rls_coverage WHERE relid = 'events_2027'::regclass;
SQL
)"
check "the new partition is audited (row and TRUNCATE triggers, both ALWAYS)" "A|A" \
    "$(q ops_restored postgres "SELECT string_agg(tgenabled::text, '|') FROM pg_trigger WHERE tgrelid = 'events_2027'::regclass AND tgname LIKE 'warden_audit%'")"
check "a token signed with the old cluster's secret is refused on the new one" "ERROR 28000" \
    "$(q ops_restored ops_app "SELECT warden.authenticate('$(mint $ACME read 300 not-the-restored-clusters-secret-0123456789)')")"
cluster_stop restore
ops_summary dump_restore
