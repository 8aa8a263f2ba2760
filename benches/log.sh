#!/usr/bin/env bash
# The server log's redaction (warden.log_redaction, src/postgres/log.rs) under pgbench with
# log_statement = 'all', on a release build, side by side in one run: every run alternates the
# setting on and off (ALTER SYSTEM + reload; off, the hook returns at once). Workloads:
#   select: pgbench's built-in select-only transaction, extended protocol (a LOG line and a
#           parameters DETAIL per statement), with a table of registered personal data in the
#           database (so each statement is checked against its name);
#   token:  a transaction that authenticates with a JWT literal and reads a row (the token is
#           removed from every line that carries it).
# Ratios (on / off) are taken per round and reported as median [min-max].
# Usage: bash benches/log.sh   (LOG_SECONDS=5 LOG_ROUNDS=5 LOG_CLIENTS=2)
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${LOG_SECONDS:-5}
ROUNDS=${LOG_ROUNDS:-5}
CLIENTS=${LOG_CLIENTS:-2}
OUT=$WARDEN_RUN/bench-log
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench_log "${WARDEN_LOG_BENCH_PORT:-54347}"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
shared_buffers = '512MB'
jit = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
trap 'cluster_stop bench_log' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
chown postgres "$OUT"
as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -i -q -s 10 postgres >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
CREATE EXTENSION warden;
CREATE TABLE people (id int PRIMARY KEY, tenant_id uuid NOT NULL, email text);
SELECT warden.protect_table('people');
SELECT warden.register_personal_data('people', 'id', '{email}', 'redact');
CREATE TABLE docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
INSERT INTO docs SELECT g, '00000000-0000-0000-0000-000000000001', 'd' FROM generate_series(1, 1000) g;
SELECT warden.protect_table('docs');
ALTER SYSTEM SET log_statement = 'all';
SELECT pg_reload_conf();
SQL
token=$(python3 "$ROOT/scripts/mint_jwt.py" "$WARDEN_JWT_SECRET" 00000000-0000-0000-0000-000000000001 00000000-0000-0000-0000-0000000000f1 read 86400)
cat >"$OUT/token.sql" <<SQL
\\set id random(1, 1000)
BEGIN;
SELECT warden.authenticate('$token');
SELECT body FROM docs WHERE id = :id;
END;
SQL

setting() {
    psql -X -q -d postgres -c "ALTER SYSTEM SET warden.log_redaction = $1" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.3
}
run() { # run NAME ARGS... -> appends "ROUND NAME tps"
    local name=$1 tps; shift
    tps=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -c "$CLIENTS" -j "$CLIENTS" \
          -T "$SECONDS_PER_RUN" "$@" postgres 2>&1 | awk '/^tps = / { print $3 }')
    [ -n "$tps" ] || { say "pgbench failed for $name"; exit 1; }
    printf '%s %s %s\n' "$round" "$name" "$tps" | tee -a "$OUT/results.txt"
}
say "pgbench: $ROUNDS rounds x ${SECONDS_PER_RUN}s per run, $CLIENTS clients, log_statement = 'all'"
for round in $(seq "$ROUNDS"); do
    for mode in on off; do
        [ $((round % 2)) = 0 ] && mode=$([ $mode = on ] && echo off || echo on)
        setting "$mode"
        run "select/$mode" -S -M extended
        run "token/$mode" -M extended -f "$OUT/token.sql"
    done
done
setting on
check=$(grep -c "$(cut -d. -f2 <<<"$token")" "$CLUSTER_DIR/server.log" || true)
say "lines of the log holding the token's payload (written while off): $check"
python3 - "$OUT/results.txt" "$ROUNDS" "$SECONDS_PER_RUN" "$CLIENTS" <<'PY' | tee "$OUT/summary.md"
import collections, statistics, sys
tps = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, v = line.split()
    tps[name][rnd] = float(v)
print(f"{sys.argv[2]} rounds x {sys.argv[3]} s per run, {sys.argv[4]} clients, log_statement = 'all'; median TPS; on/off per round: median [min-max]")
print()
print("| workload | TPS, redaction off | TPS, redaction on | on / off |")
print("|---|---:|---:|---:|")
for w in ["select", "token"]:
    r = sorted(tps[f"{w}/on"][k] / tps[f"{w}/off"][k] for k in tps[f"{w}/on"])
    print(f"| {w} | {statistics.median(tps[w + '/off'].values()):.0f} | {statistics.median(tps[w + '/on'].values()):.0f} | {statistics.median(r):.3f} [{r[0]:.3f}-{r[-1]:.3f}] |")
PY
