#!/usr/bin/env bash
# The cost of preserved versions: UPDATE throughput (one row per transaction, by primary key, under
# a write context) of rows a legal hold covers (the row guard copies the prior version into
# warden.preserved_versions) against rows of the same table that no hold covers (the guard looks the
# tenant up and returns), in one database with tenant holds on half the tenants; the two scenarios
# alternate within each round and the ratio is taken per round. CPU-bound on purpose
# (synchronous_commit = off). The cost of UPDATE with no hold against 0.6.0 is measured by
# benches/ab_libraries.sh (AB_WORKLOAD=update).
# Usage: bash benches/preserve.sh   (PRESERVE_SECONDS=5 PRESERVE_ROUNDS=5 PRESERVE_CLIENTS=2)
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${PRESERVE_SECONDS:-5}
ROUNDS=${PRESERVE_ROUNDS:-5}
CLIENTS=${PRESERVE_CLIENTS:-2}
OUT=$WARDEN_RUN/bench-preserve
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench_preserve "${WARDEN_PRESERVE_BENCH_PORT:-54348}"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
shared_buffers = '1GB'
max_wal_size = '8GB'
jit = off
synchronous_commit = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
trap 'cluster_stop bench_preserve' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
chown postgres "$OUT"

say "loading 1,000 tenants x 1,000 rows; tenant holds on tenants 0-499"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
psql -X -q -v ON_ERROR_STOP=1 -d bench >/dev/null <<'SQL'
CREATE EXTENSION warden;
CREATE ROLE bench_app LOGIN IN ROLE warden_context_setter;
CREATE TABLE pu (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount int NOT NULL, body text NOT NULL);
INSERT INTO pu SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 1000)::text, 12, '0'))::uuid, 0, 'a document body of some length'
  FROM generate_series(0::bigint, 999999) i;
SELECT warden.protect_table('pu');
GRANT SELECT, UPDATE ON pu TO bench_app;
SELECT count(warden.place_hold('BENCH-' || k, 'benchmark', ('00000000-0000-0000-0000-' || lpad(k::text, 12, '0'))::uuid))
  FROM generate_series(0, 499) k;
VACUUM ANALYZE pu;
SQL
for s in held unheld; do
    if [ $s = held ]; then range="0, 499"; else range="500, 999"; fi
    cat >"$OUT/$s.sql" <<SQL
\\set k random($range)
\\set id :k + 1000 * random(0, 999)
BEGIN;
SELECT warden.set_context(('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000f1', 'write');
UPDATE pu SET amount = amount + 1 WHERE id = :id;
END;
SQL
done
run() { # run NAME SCRIPT
    local tps
    tps=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" \
          -T "$SECONDS_PER_RUN" -U bench_app -f "$2" bench 2>&1 | awk '/^tps = / { print $3 }')
    [ -n "$tps" ] || { say "pgbench failed for $1"; exit 1; }
    printf '%s %s %s\n' "$round" "$1" "$tps" | tee -a "$OUT/results.txt"
}
say "pgbench: $ROUNDS rounds x ${SECONDS_PER_RUN}s per run, $CLIENTS clients, -M prepared"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then run held "$OUT/held.sql"; run unheld "$OUT/unheld.sql"
    else run unheld "$OUT/unheld.sql"; run held "$OUT/held.sql"; fi
done
kept=$(psql -X -qAt -d bench -c "SELECT count(*) FROM warden.preserved_versions")
say "prior versions kept: $kept"
python3 - "$OUT/results.txt" "$ROUNDS" "$SECONDS_PER_RUN" "$CLIENTS" "$kept" <<'PY' | tee "$OUT/summary.md"
import collections, statistics, sys
tps = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, v = line.split()
    tps[name][rnd] = float(v)
c = int(sys.argv[4])
r = sorted(tps["held"][k] / tps["unheld"][k] for k in tps["held"])
us = sorted(c * (1e6 / tps["held"][k] - 1e6 / tps["unheld"][k]) for k in tps["held"])
print(f"{sys.argv[2]} rounds x {sys.argv[3]} s, {c} clients, synchronous_commit = off; {sys.argv[5]} prior versions kept")
print()
print("| UPDATE of one row | TPS (median) | ratio to an unheld row, per round | added us per update |")
print("|---|---:|---:|---:|")
print(f"| a row no hold covers | {statistics.median(tps['unheld'].values()):.0f} | 1 | 0 |")
print(f"| a row a hold covers (prior version kept) | {statistics.median(tps['held'].values()):.0f} | "
      f"{statistics.median(r):.3f} [{r[0]:.3f}-{r[-1]:.3f}] | {statistics.median(us):.1f} [{us[0]:.1f}-{us[-1]:.1f}] |")
PY
