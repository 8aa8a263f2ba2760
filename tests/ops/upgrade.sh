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
newdb() { psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }

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
    check "$v -> $current: ALTER EXTENSION warden UPDATE" "" \
        "$(q "$db" postgres "SET lock_timeout = '30s'; ALTER EXTENSION warden UPDATE")"
    check "$v: the live transaction still sees acme's rows only" "3" "$(live_run app "SELECT count(*) FROM docs;")"
    live_run app "COMMIT;" >/dev/null
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
    fi
done
ops_summary upgrade
