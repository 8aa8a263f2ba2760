#!/usr/bin/env bash
# Legal-hold guard benchmark: DELETE throughput (one row per transaction, by primary key, under a
# delete-level context) on a protected table with the guards, against the same table without them,
# in three phases: (1) no hold anywhere, (2) table holds on 100 other tenants, (3) a hold on another
# data subject of every tenant the deletes hit (the guard must read the row's subject). Within each
# round the two tables run back to back; the ratio guarded/unguarded is taken per round.
# CPU-bound on purpose (synchronous_commit = off): with durable commits the WAL flush hides the
# guard's cost; here nothing does.
# Usage: bash benches/holds.sh   (HOLDS_SECONDS=5 HOLDS_ROUNDS=5 HOLDS_CLIENTS=2 by default)
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${HOLDS_SECONDS:-5}
ROUNDS=${HOLDS_ROUNDS:-5}
CLIENTS=${HOLDS_CLIENTS:-2}
OUT=$WARDEN_RUN/bench-holds
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench_holds "${WARDEN_HOLDS_BENCH_PORT:-54343}"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
shared_buffers = '1GB'
max_wal_size = '8GB'
jit = off
synchronous_commit = off
autovacuum = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
trap 'cluster_stop bench_holds' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
chown postgres "$OUT"

say "loading 2 x 3,000,000 rows (1,000 tenants, 1,000 subjects each)"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
psql -X -q -v ON_ERROR_STOP=1 -d bench >/dev/null <<'SQL'
CREATE EXTENSION warden;
CREATE ROLE bench_app LOGIN IN ROLE warden_context_setter;
-- h_plain: protected, without the guard triggers; h_guard: protected, with them (the default)
CREATE TABLE h_plain (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, subject uuid NOT NULL, email text);
CREATE TABLE h_guard (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, subject uuid NOT NULL, email text);
INSERT INTO h_plain SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 1000)::text, 12, '0'))::uuid,
                           ('00000000-0000-0000-0001-' || lpad((i / 1000 % 1000)::text, 12, '0'))::uuid, 'x' || i || '@example.com'
  FROM generate_series(1::bigint, 3000000) i;
INSERT INTO h_guard SELECT * FROM h_plain;
SELECT warden.protect_table('h_plain'), warden.protect_table('h_guard');
DROP TRIGGER warden_hold_row ON h_plain;
DROP TRIGGER warden_hold_statement ON h_plain;
SELECT warden.register_personal_data('h_guard', 'subject', '{email}', 'hash');
SELECT warden.register_personal_data('h_plain', 'subject', '{email}', 'hash');
GRANT SELECT, DELETE ON h_plain, h_guard TO bench_app;
VACUUM ANALYZE h_plain, h_guard;
SQL

for t in h_plain h_guard; do
    cat >"$OUT/$t.sql" <<SQL
\\set k random(0, 999)
\\set id 1 + :k + 1000 * random(0, 2999)
BEGIN;
SELECT warden.set_context(('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000f1', 'delete');
DELETE FROM $t WHERE id = :id;
END;
SQL
done

run() { # run PHASE TABLE -> appends "PHASE ROUND TABLE tps"
    local tps
    tps=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" \
          -T "$SECONDS_PER_RUN" -U bench_app -f "$OUT/$2.sql" bench 2>&1 | awk '/^tps = / { print $3 }')
    [ -n "$tps" ] || { say "pgbench failed for $1 $2"; exit 1; }
    printf '%s %s %s %s\n' "$1" "$round" "$2" "$tps" | tee -a "$OUT/results.txt"
}
phase() { # phase NAME: ROUNDS rounds of both tables, order alternating
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then run "$1" h_plain; run "$1" h_guard; else run "$1" h_guard; run "$1" h_plain; fi
    done
}

say "pgbench: $ROUNDS rounds x ${SECONDS_PER_RUN}s per run and table, $CLIENTS clients, -M prepared"
phase no_hold
psql -X -q -v ON_ERROR_STOP=1 -d bench -c "SELECT count(warden.place_hold('BENCH-T' || g, 'other tenant', ('00000000-0000-0000-0002-' || lpad(g::text, 12, '0'))::uuid, 'h_guard')) FROM generate_series(1, 100) g" >/dev/null
phase other_tenants
# every tenant the deletes hit has a hold over one subject, never the one of the deleted row
psql -X -q -v ON_ERROR_STOP=1 -d bench -c "SELECT count(warden.place_hold('BENCH-S' || g, 'another subject', ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'h_guard', '00000000-0000-0000-0003-000000000000')) FROM generate_series(0, 999) g" >/dev/null
phase other_subject
# sanity: the guard is live (a held row is refused)
psql -X -q -d bench -c "INSERT INTO h_guard VALUES (0, '00000000-0000-0000-0000-000000000007', '00000000-0000-0000-0004-000000000000', 'x')" \
    -c "SELECT warden.place_hold('BENCH-X', 'check', '00000000-0000-0000-0000-000000000007', 'h_guard', '00000000-0000-0000-0004-000000000000')" >/dev/null
refused=$(psql -X -qtA -d bench -c "BEGIN" -c "SELECT warden.set_context('00000000-0000-0000-0000-000000000007', '00000000-0000-0000-0000-0000000000f1', 'delete')" \
          -c "DELETE FROM h_guard WHERE id = 0" 2>&1 | grep -c "is refused: legal hold" || true)
[ "$refused" = 1 ] || { say "the guard did not refuse a held row"; exit 1; }

python3 - "$OUT/results.txt" "$ROUNDS" "$SECONDS_PER_RUN" "$CLIENTS" <<'PY' | tee "$OUT/summary.md"
import collections, statistics, sys
t = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    phase, rnd, table, v = line.split()
    t[(phase, table)][rnd] = float(v)
print(f"{sys.argv[2]} rounds x {sys.argv[3]} s per run, {sys.argv[4]} clients, pgbench -M prepared, synchronous_commit off; median TPS; guarded/unguarded per round: median [min-max]")
print()
print("| holds | without the guard | with the guard | ratio |")
print("|---|---:|---:|---:|")
names = {"no_hold": "none anywhere", "other_tenants": "100 table holds on other tenants",
         "other_subject": "a hold on another subject of every tenant deleted from"}
for phase in ["no_hold", "other_tenants", "other_subject"]:
    a, b = t[(phase, "h_plain")], t[(phase, "h_guard")]
    r = sorted(b[k] / a[k] for k in b if k in a)
    print(f"| {names[phase]} | {statistics.median(a.values()):.0f} | {statistics.median(b.values()):.0f} | "
          f"{statistics.median(r):.3f} [{r[0]:.3f}-{r[-1]:.3f}] |")
PY
