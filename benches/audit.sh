#!/usr/bin/env bash
# Audit trail benchmark: INSERT and UPDATE throughput on a protected table with (a) no audit,
# (b) a PL/pgSQL jsonb audit trigger like supa_audit's, (c) pgaudit (pgaudit.log = 'write'),
# (d) warden.enable_audit (hash chain, sealed by the worker), (e) the naive chain (one global lock,
# hash computed in the writer). At 1 client, and at 8 clients on 8 tenants and on one tenant.
# Then warden.verify_audit() over 1,000,000 events. See benches/audit/setup.sql.
# Durable commits (fsync and synchronous_commit on, unlike the test clusters): an audit trail is
# only worth its price if what it recorded survives a crash, and the naive chain's cost is that
# its lock is held across the commit's WAL flush.
# Usage: bash benches/audit.sh   (AUDIT_SECONDS=5 AUDIT_ROUNDS=3 by default; AUDIT_ROUNDS=0 times
# only verify_audit, with 0, 1 and 2 parallel workers)
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${AUDIT_SECONDS:-5}
ROUNDS=${AUDIT_ROUNDS:-3}
VERIFY_EVENTS=${AUDIT_VERIFY_EVENTS:-1000000}
B=$ROOT/benches/audit
OUT=$WARDEN_RUN/bench-audit
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench_audit "${WARDEN_AUDIT_BENCH_PORT:-54342}"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'warden, pgaudit'
shared_buffers = '1GB'
max_wal_size = '4GB'
jit = off
fsync = on
synchronous_commit = on
pgaudit.log = 'none'
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
trap 'cluster_stop bench_audit' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
chown postgres "$OUT"

say "loading 5 x 160,000 rows"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE EXTENSION pgaudit" -f "$B/setup.sql" >/dev/null

declare -A TABLE=([a]=w_a [b]=w_b [c]=w_c [d]=w_d [e]=w_e)
# script OP SCENARIO TENANTS -> a pgbench script
script() {
    local f=$OUT/$1-$2-$3.sql tenant
    tenant=$([ "$3" = 1 ] && echo 0 || echo ":client_id % 8")
    sed -e "s/@TABLE@/${TABLE[$2]}/" -e "s/@TENANT@/$tenant/" "$B/$1.sql" >"$f"
    echo "$f"
}

# Waits until warden's worker has sealed everything (so that no scenario runs with sealing work
# left over from another); prints how long that took.
drain() {
    local start=$SECONDS
    until [ "$(psql -X -qtA -d bench -c "SELECT count(*) FROM warden.audit_pending")" = 0 ]; do sleep 0.2; done
    echo $((SECONDS - start))
}

run() { # run NAME CLIENTS SCRIPT [ROLE]
    local tps role=${4:-bench_app}
    tps=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -M prepared -c "$2" -j "$2" \
          -T "$SECONDS_PER_RUN" -U "$role" -f "$3" bench 2>&1 | awk '/^tps = / { print $3 }')
    [ -n "$tps" ] || { say "pgbench failed for $1"; exit 1; }
    local lag
    lag=$(drain)
    psql -X -q -d bench -c "CHECKPOINT" >/dev/null
    printf '%s %s %s %s\n' "$round" "$1" "$tps" "$lag" | tee -a "$OUT/results.txt"
}

say "pgbench: $ROUNDS rounds x ${SECONDS_PER_RUN}s per run, -M prepared"
order=(a b c d e)
for round in $(seq "$ROUNDS"); do
    for op in insert update; do
        for cfg in "1 1" "8 8" "8 1"; do
            read -r clients tenants <<<"$cfg"
            for s in "${order[@]}"; do
                role=bench_app
                [ "$s" = c ] && role=bench_pgaudit
                run "$op/$s/c$clients-t$tenants" "$clients" "$(script "$op" "$s" "$tenants")" "$role"
            done
        done
    done
    order=("${order[@]:1}" "${order[0]}")
done

if [ "$ROUNDS" -gt 0 ]; then
    say "checking the chain the benchmark built"
    psql -X -d bench -c "SELECT * FROM warden.verify_audit()" | tee "$OUT/verify-bench.txt"
    grep -q ' t ' "$OUT/verify-bench.txt" || { say "the chain does not verify"; exit 1; }
fi

say "verify_audit over $VERIFY_EVENTS events"
psql -X -q -d bench -c "CREATE TABLE vload (id int PRIMARY KEY, tenant_id uuid NOT NULL, v text)" \
    -c "SELECT warden.protect_table('vload')" -c "SELECT warden.enable_audit('vload')" >/dev/null
have=$(psql -X -qtA -d bench -c "SELECT count(*) FROM warden.audit_events")
need=$((VERIFY_EVENTS - have))
if [ "$need" -gt 0 ]; then
    psql -X -q -d bench -c "INSERT INTO vload SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 8)::text, 12, '0'))::uuid, md5(i::text) FROM generate_series(1, $need) i" >/dev/null
fi
drain >/dev/null
psql -X -q -d bench -c "VACUUM ANALYZE warden.audit_events" >/dev/null
# with 0, 1 and 2 parallel workers for the content check (the leader takes part in each case)
for w in 0 1 2; do
    for i in 1 2 3; do
        printf 'workers=%s ' "$w" | tee -a "$OUT/verify.txt"
        psql -X -qtA -d bench -c "SET max_parallel_workers_per_gather = $w" -c "\\timing on" \
            -c "SELECT checked, intact FROM warden.verify_audit()" 2>&1 | tr '\n' ' ' | tee -a "$OUT/verify.txt"
        echo | tee -a "$OUT/verify.txt"
    done
done

touch "$OUT/results.txt"
python3 - "$OUT/results.txt" "$OUT/verify.txt" "$ROUNDS" "$SECONDS_PER_RUN" <<'PY' | tee "$OUT/summary.md"
import collections, re, statistics, sys
tps = collections.defaultdict(dict)
lag = collections.defaultdict(list)
for line in open(sys.argv[1]):
    rnd, name, v, l = line.split()
    tps[name][rnd] = float(v)
    lag[name].append(int(l))
def med(n): return statistics.median(tps[n].values())
def ratio(num, den):
    r = sorted(tps[num][k] / tps[den][k] for k in tps[num] if k in tps[den])
    return f"{statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]"
if tps:
    print(f"{sys.argv[3]} rounds x {sys.argv[4]} s per run, pgbench -M prepared; median TPS; ratios within each round: median [min-max]")
    print()
    print("| workload | (a) none | (b) jsonb trigger | (c) pgaudit | (d) warden | (e) naive chain | b/a | c/a | d/a | e/a | d/e |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op in ["insert", "update"]:
        for cfg, label in [("c1-t1", "1 client"), ("c8-t8", "8 clients, 8 tenants"), ("c8-t1", "8 clients, 1 tenant")]:
            n = lambda s: f"{op}/{s}/{cfg}"
            a, b, c, d, e = (med(n(s)) for s in "abcde")
            print(f"| {op}, {label} | {a:.0f} | {b:.0f} | {c:.0f} | {d:.0f} | {e:.0f} | {ratio(n('b'), n('a'))} | {ratio(n('c'), n('a'))} | {ratio(n('d'), n('a'))} | {ratio(n('e'), n('a'))} | {ratio(n('d'), n('e'))} |")
    print()
    print("Seconds the worker needed after a warden run to seal what was left: " +
          ", ".join(f"{k} {max(v)}" for k, v in sorted(lag.items()) if "/d/" in k))
rates = collections.defaultdict(list)
n = 0
for line in open(sys.argv[2]):
    m = re.search(r"workers=(\d+) .*?(\d+)\|t\s+Time: ([\d.]+) ms", line)
    if m:
        n = int(m.group(2))
        rates[int(m.group(1))].append(n / (float(m.group(3)) / 1000))
for w, r in sorted(rates.items()):
    if w == 0:
        print()
    runs = ", ".join(f"{x:,.0f}" for x in r)
    print(f"verify_audit: {n:,} events, {w} parallel worker(s): median {statistics.median(r):,.0f} events/s (runs: {runs})")
PY
