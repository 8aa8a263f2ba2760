#!/usr/bin/env bash
# Upgrade test, against the cluster in PGHOST/PGPORT (scripts/test.sh starts it with the current
# build preloaded and installs every released version's install script with install_tree).
#
# 1. The recorded SQL of the current version (sql/released/warden--<current>.sql) still matches what
#    the code generates: otherwise a released version's SQL was changed without a version bump.
# 2. Every C symbol that any released version's SQL names exists in the current library: a database
#    that has not run ALTER EXTENSION UPDATE yet keeps working on the new library.
# 3. For every earlier release: CREATE EXTENSION at that version, with data in protected tables, a
#    guarded schema and a live context in an open transaction; the protections hold on the old SQL
#    with the new library; ALTER EXTENSION warden UPDATE; then the schema of the extension's objects is
#    exactly that of a fresh CREATE EXTENSION (tests/ops/schema_fingerprint.sql), and the protections
#    still hold.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
current=$(warden_version)
ext=$($PG_CONFIG --sharedir)/extension
lib=$($PG_CONFIG --pkglibdir)/warden.so
out=$WARDEN_RUN/upgrade
rm -rf "$out" && mkdir -p "$out"

# fingerprint DB FILE: the schema fingerprint, with the version number masked
fingerprint() {
    if ! psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$OPS/schema_fingerprint.sql" >"$2.raw"; then
        check "schema fingerprint of $1" done failed
    fi
    sed -E 's/^(extension: version )[^,]*/\1X/' "$2.raw" >"$2"
}
newdb() { drop_db "$1"; psql -X -q -d postgres -c "CREATE DATABASE $1"; }

echo "# upgrade: current version $current"
newdb ops_fresh
q ops_fresh postgres "CREATE EXTENSION warden" >/dev/null
fingerprint ops_fresh "$out/fresh.txt"
check "fresh install is at $current" "$current" "$(q ops_fresh postgres "SELECT extversion FROM pg_extension WHERE extname = 'warden'")"

# 1. the recorded SQL of the current version
recorded=$ROOT/sql/released/warden--$current.sql
if [ -f "$recorded" ]; then
    install_file "$recorded" "$ext/warden--$current.recorded.sql"
    newdb ops_recorded
    q ops_recorded postgres "CREATE EXTENSION warden VERSION '$current.recorded'" >/dev/null
    fingerprint ops_recorded "$out/recorded.txt"
    rm -f "$ext/warden--$current.recorded.sql"
    if diff -u "$out/recorded.txt" "$out/fresh.txt" >"$out/recorded.diff"; then
        check "the SQL of $current is the recorded one (sql/released/warden--$current.sql)" same same
    else
        head -40 "$out/recorded.diff"
        check "the SQL of $current is the recorded one: if $current has been released (it is on main), bump the version in Cargo.toml and write sql/warden--$current--<next>.sql; if it has not, re-record it with scripts/record_sql.sh" same differs
    fi
else
    check "the SQL of $current is recorded in sql/released/ (scripts/record_sql.sh)" yes no
fi

# 2. symbols named by every released version's SQL
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort -u)
for f in "$ROOT"/sql/released/warden--*.sql; do
    v=$(basename "$f" .sql); v=${v#warden--}
    missing=$(grep -oE "'MODULE_PATHNAME', *'[A-Za-z0-9_]+'" "$f" | sed -E "s/.*'([A-Za-z0-9_]+)'$/\1/" | sort -u |
              comm -23 - <(echo "$exported") | paste -sd' ')
    check "every C function that the SQL of $v names is in the current library" "" "$missing"
done

# 3. every earlier release, upgraded
earlier=$(cd "$ROOT/sql/released" && ls warden--*.sql | sed -E 's/^warden--(.*)\.sql$/\1/' | grep -vxF "$current" | sort -V || true)
[ -n "$earlier" ] || echo "# no earlier release to upgrade from"
for v in $earlier; do
    db=ops_upgrade_${v//./_}
    newdb "$db"
    q "$db" postgres "CREATE EXTENSION warden VERSION '$v'" >/dev/null
    check "$v: installed at $v" "$v" "$(q "$db" postgres "SELECT extversion FROM pg_extension WHERE extname = 'warden'")"
    load_fixture "$db"
    attack_run "$v on the new library, before the update" "$db"
    # a transaction in flight, with a context, while the extension is updated
    live_open app -d "$db" -U ops_app
    live_run app "BEGIN; SELECT warden.authenticate('$(mint $ACME read)');" >/dev/null
    # a session that used the new library on the old SQL (an ALTER TABLE: the hold check runs and
    # finds no holds table) and stays connected through the update
    live_open dba -d "$db" -U postgres
    live_run dba "ALTER TABLE docs ALTER COLUMN title SET DEFAULT 'untitled';" >/dev/null
    check "$v: the live transaction sees acme's rows before the update" "3" "$(live_run app "SELECT count(*) FROM docs;")"
    if [ "$v" = "0.5.0" ]; then
        # what 0.6.0 converts: an audit chain, a hold, an API key, keys and a secret of uuid tenants
        qf "$db" postgres >/dev/null <<'SQL'
SELECT warden.enable_audit('docs');
BEGIN;
SELECT warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', 'aaaaaaaa-0000-0000-0000-000000000001', 'admin');
UPDATE docs SET title = title || ' (v1)';
SELECT warden.create_key('k');
SELECT warden.put_secret('s', 'before the update');
COMMIT;
SELECT warden.place_hold('PRE-1', 'placed before the update', 'bbbbbbbb-0000-0000-0000-00000000000b');
SELECT warden.seal_audit();
SQL
        pre_key=$(q "$db" postgres "SELECT warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', 'aaaaaaaa-0000-0000-0000-000000000001', 'admin'); SELECT warden.create_api_key('pre', 'read', '{*:*:read}')" | tail -1)
        pre_ct=$(q "$db" postgres "SELECT warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', 'aaaaaaaa-0000-0000-0000-000000000001', 'admin'); SELECT warden.encrypt('ciphertext of 0.5.0'::text, 'k')" | tail -1)
    fi
    # The update rewrites warden's tables (0.6.0: tenants and actors become text), so it waits for
    # the transactions that have read one of them (this one read warden.deleted_accounts when it
    # authenticated): it runs meanwhile, the live transaction keeps its protection, and the update
    # completes at its COMMIT.
    (q "$db" postgres "SET lock_timeout = '60s'; ALTER EXTENSION warden UPDATE" >"$out/update-$v.out" 2>&1) &
    update_pid=$!
    sleep 1
    check "$v: the live transaction still sees acme's rows only, while the update runs" "3" "$(live_run app "SELECT count(*) FROM docs;")"
    live_run app "COMMIT;" >/dev/null
    wait "$update_pid" || true
    check "$v -> $current: ALTER EXTENSION warden UPDATE" "" "$(cat "$out/update-$v.out")"
    check "$v: the live session has no context after COMMIT" "0" "$(live_run app "SELECT count(*) FROM docs;")"
    live_close app
    if [ "$(printf '%s\n%s\n' "0.4.0" "$current" | sort -V | head -1)" = "0.4.0" ]; then
        q "$db" postgres "SELECT warden.place_hold('OPS-LIVE', 'placed after the update', 'aaaaaaaa-0000-0000-0000-00000000000a')" >/dev/null
        check "$v -> $current: a session connected before the update is guarded by a hold placed after it" "ERROR 42501" \
            "$(live_run dba "BEGIN; SELECT warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', 'aaaaaaaa-0000-0000-0000-000000000001', 'admin') \\g /dev/null
DELETE FROM docs; ROLLBACK;" | grep -m1 ERROR)"
        q "$db" postgres "SELECT warden.release_hold(id, 'done') FROM warden.legal_holds WHERE case_ref = 'OPS-LIVE'" >/dev/null
    fi
    live_close dba
    check "$v: updated to $current" "$current" "$(q "$db" postgres "SELECT extversion FROM pg_extension WHERE extname = 'warden'")"
    fingerprint "$db" "$out/upgraded-$v.txt"
    if diff -u "$out/fresh.txt" "$out/upgraded-$v.txt" >"$out/upgraded-$v.diff"; then
        check "$v -> $current: the extension's schema equals a fresh install's" same same
    else
        head -60 "$out/upgraded-$v.diff"
        check "$v -> $current: the extension's schema equals a fresh install's (diff: $out/upgraded-$v.diff)" same differs
    fi
    attack_run "$v -> $current, after the update" "$db"
    if [ "$v" = "0.5.0" ]; then
        check "0.5.0 -> $current: the chain of 0.5.0 verifies after the update (serialization 1)" "t|t" "$(q "$db" postgres \
            "SELECT intact, (SELECT count(*) > 0 FROM warden.audit_events WHERE serialization = 1) FROM warden.verify_audit()")"
        check "0.5.0 -> $current: an API key made before the update authenticates" "aaaaaaaa-0000-0000-0000-00000000000a" "$(q "$db" postgres \
            "SELECT warden.authenticate_key('$pre_key'); SELECT warden.current_tenant_id()" | tail -1)"
        check "0.5.0 -> $current: a ciphertext and a secret made before the update decrypt" "ciphertext of 0.5.0|before the update" "$(q "$db" postgres \
            "SELECT warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', 'aaaaaaaa-0000-0000-0000-000000000001', 'admin');
             SELECT warden.decrypt_text('$pre_ct') || '|' || warden.get_secret('s')" | tail -1)"
        check "0.5.0 -> $current: a hold placed before the update still refuses" "ERROR 42501" "$(q "$db" postgres \
            "SELECT warden.set_context('bbbbbbbb-0000-0000-0000-00000000000b', 'bbbbbbbb-0000-0000-0000-000000000001', 'delete'); DELETE FROM docs" | grep -m1 ERROR)"
        # bigint and text tenants, added and used after the update, on the same chain
        qf "$db" postgres >/dev/null <<'SQL'
SET ROLE ops_owner;
CREATE TABLE acct (id bigint PRIMARY KEY, account_id bigint NOT NULL, body text);
CREATE TABLE orgs (id int PRIMARY KEY, org_id text NOT NULL, body text);
SELECT warden.protect_table('acct', 'account_id'), warden.protect_table('orgs', 'org_id');
SELECT warden.enable_audit('acct'), warden.enable_audit('orgs');
RESET ROLE;
GRANT SELECT, INSERT, UPDATE, DELETE ON acct, orgs TO ops_app;
BEGIN;
SELECT warden.set_context('42', 'user_2NQ8xk1Lr3', 'write');
INSERT INTO acct VALUES (1, 42, 'forty-two');
COMMIT;
BEGIN;
SELECT warden.set_context('org_2abcXYZ9kQ', 'auth0|5f7c8ec7', 'write');
INSERT INTO orgs VALUES (1, 'org_2abcXYZ9kQ', 'clerk org');
COMMIT;
SELECT warden.seal_audit();
SQL
        check "0.5.0 -> $current: bigint and text tenants after the update: each sees its rows" "forty-two|clerk org|0" "$(qf "$db" postgres <<'SQL' | paste -sd'|'
BEGIN;
SELECT warden.set_context('42', 'user_2NQ8xk1Lr3', 'read') \g /dev/null
SET LOCAL ROLE ops_app;
SELECT body FROM acct;
RESET ROLE;
SELECT warden.set_context('org_2abcXYZ9kQ', 'auth0|5f7c8ec7', 'read') \g /dev/null
SET LOCAL ROLE ops_app;
SELECT body FROM orgs;
SELECT count(*) FROM acct;
COMMIT;
SQL
)"
        check "0.5.0 -> $current: the chain spans the update (serializations 1 and 2) and verifies" "true|true|42|org_2abcXYZ9kQ" "$(q "$db" postgres \
            "SELECT intact::text || '|' || (SELECT (count(DISTINCT serialization) = 2)::text FROM warden.audit_events) || '|' ||
                    (SELECT string_agg(tenant, '|' ORDER BY id) FROM warden.audit_events WHERE resource_type IN ('public.acct', 'public.orgs'))
               FROM warden.verify_audit()")"
        q "$db" postgres "SELECT warden.audit_export(0, 1000000)" >"$out/export-$v.jsonl"
        check "0.5.0 -> $current: the export across the update verifies outside the database" "intact=true" \
            "$(python3 "$ROOT/scripts/verify_audit_export.py" "$out/export-$v.jsonl" | grep -o 'intact=[a-z]*')"
        check "0.5.0 -> $current: a hold of a bigint tenant refuses" "ERROR 42501" "$(qf "$db" postgres <<'SQL' | grep -m1 ERROR
BEGIN;
SELECT warden.place_hold('POST-1', 'bigint tenant', '42') \g /dev/null
SELECT warden.set_context('42', 'user_2NQ8xk1Lr3', 'delete') \g /dev/null
DELETE FROM acct;
ROLLBACK;
SQL
)"
    fi
    check "$v -> $current: a new partition of a protected table is protected" "t" "$(qf "$db" postgres <<'SQL'
SET ROLE ops_owner;
CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
RESET ROLE;
SELECT protected FROM warden.rls_coverage WHERE relid = 'events_2027'::regclass;
SQL
)"
    check "$v -> $current: a new table in a guarded schema is deny-by-default" "t|t|0" "$(qf "$db" postgres <<'SQL' | paste -sd'|'
SET ROLE ops_owner;
CREATE TABLE vault.more (tenant_id uuid);
RESET ROLE;
INSERT INTO vault.more VALUES ('aaaaaaaa-0000-0000-0000-00000000000a');
GRANT SELECT ON vault.more TO ops_app;
SELECT rls_enabled, rls_forced FROM warden.rls_coverage WHERE relid = 'vault.more'::regclass;
SET ROLE ops_app;
SELECT count(*) FROM vault.more;
SQL
)" 
    if [ "$(printf '%s\n%s\n' "0.4.0" "$current" | sort -V | head -1)" = "0.4.0" ]; then
        check "$v -> $current: tables protected before the update carry the legal-hold guards" "0" "$(q "$db" postgres \
            "SELECT count(*) FROM warden.protected_tables p JOIN pg_class k ON k.oid = p.relid
              WHERE (SELECT count(*) FROM pg_trigger g WHERE g.tgrelid = p.relid AND g.tgenabled = 'A'
                       AND g.tgname IN ('warden_hold_statement', 'warden_hold_row'))
                    < CASE k.relkind WHEN 'r' THEN 2 ELSE 1 END")"
        check "$v -> $current: a hold placed after the update refuses deleting held rows" "42501" "$(qf "$db" postgres <<'SQL' | tail -1
BEGIN;
SELECT warden.place_hold('OPS-1', 'upgrade test', 'aaaaaaaa-0000-0000-0000-00000000000a') IS NOT NULL;
SELECT warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', 'aaaaaaaa-0000-0000-0000-000000000001', 'admin');
DO $$ BEGIN DELETE FROM docs; RAISE EXCEPTION 'not refused'; EXCEPTION WHEN insufficient_privilege THEN RAISE NOTICE 'refused'; END $$;
SELECT '42501';
ROLLBACK;
SQL
)"
        check "$v -> $current: an update of a held row keeps its prior version" "1" "$(qf "$db" postgres <<'SQL' | tail -1
BEGIN;
SELECT warden.place_hold('OPS-2', 'upgrade test', 'aaaaaaaa-0000-0000-0000-00000000000a') IS NOT NULL;
SELECT warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', 'aaaaaaaa-0000-0000-0000-000000000001', 'write');
UPDATE docs SET title = title || '!' WHERE id = (SELECT min(id) FROM docs);
SELECT count(*) FROM warden.preserved_versions WHERE case_refs = '{OPS-2}';
ROLLBACK;
SQL
)"
    fi
done
ops_summary upgrade
