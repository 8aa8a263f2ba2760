#!/usr/bin/env bash
# Side-by-side pgbench comparison of tenant isolation approaches (see benches/setup.sql).
# Usage: bash benches/run.sh          (BENCH_SECONDS=4 BENCH_ROUNDS=8 BENCH_CLIENTS=2 by default)
# Scenarios alternate within each round (order rotated per round); the median TPS is reported.
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${BENCH_SECONDS:-4}
ROUNDS=${BENCH_ROUNDS:-8}
CLIENTS=${BENCH_CLIENTS:-2}
B=$ROOT/benches
OUT=$WARDEN_RUN/bench-results
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench "${WARDEN_BENCH_PORT:-54340}"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
shared_buffers = '1GB'
max_parallel_workers_per_gather = 0
jit = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
trap 'cluster_stop bench' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
chown postgres "$OUT"

say "loading 10 x 1,000,000 rows"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
psql -X -q -v ON_ERROR_STOP=1 -d bench -f "$B/setup.sql" >/dev/null

# Every scenario sets its context the same way, with both calls, so that only the table (and its
# policy) differs between a, b, b' and c; what warden's context costs is measured separately below.
CONTEXT="SELECT set_config('app.tenant', '00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'), true), warden.set_context(('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000f1', 'read');"
declare -A TABLE=([a]=t_a [b]=t_b [bp]=t_bp [c]=t_c [c2]=t_c2 [c3]=t_c3 [a8]=t_a8 [c8]=t_c8 [at]=t_at [ct]=t_ct)
TENANT_K="('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid"
# the bigint and text copies: the same tenants, as the number k and as 'org_<k>'
CONTEXT8="SELECT warden.set_context(:k::text, 'user_f1', 'read');"
CONTEXTT="SELECT warden.set_context('org_' || :k::text, 'user_f1', 'read');"
declare -A CTX=([a8]=$CONTEXT8 [c8]=$CONTEXT8 [at]=$CONTEXTT [ct]=$CONTEXTT)
declare -A TK=([a8]=":k::bigint" [at]="('org_' || :k::text)")
# BENCH_ONLY=identifiers: only the uuid, bigint and text pairs (a, c, a8, c8, at, ct)
if [ "${BENCH_ONLY:-}" = identifiers ]; then SCENARIOS=(a c a8 c8 at ct); else SCENARIOS=(a b bp c c2 c3 a8 c8 at ct); fi

# script QUERY SCENARIO -> path of the pgbench script for that pair
script() {
    local f=$OUT/$1-$2.sql
    local table=${TABLE[$2]} where="" context=${CTX[$2]:-$CONTEXT}
    if [ "$2" = a8 ] || [ "$2" = at ]; then
        where="WHERE tenant_id = ${TK[$2]}"
        [ "$1" = full_scan ] && table="(SELECT * FROM ${TABLE[$2]} WHERE tenant_id = ${TK[$2]} OFFSET 0) t"
    fi
    if [ "$2" = a ]; then
        # Without RLS the application filters by tenant itself. For the per-row case the tenant
        # test is fenced (OFFSET 0) so that, as under a policy, it runs first on every row; left to
        # itself the planner would run the LIKE on every row first, which would flatter warden.
        where="WHERE tenant_id = $TENANT_K"
        [ "$1" = full_scan ] && table="(SELECT * FROM t_a WHERE tenant_id = $TENANT_K OFFSET 0) t_a"
    fi
    TABLE_=$table CONTEXT_=$context TENANT_WHERE_=$where python3 -c \
        'import os, sys; t = open(sys.argv[1]).read()
for k in ("TABLE", "CONTEXT", "TENANT_WHERE"): t = t.replace("@" + k + "@", os.environ[k + "_"])
sys.stdout.write(t)' \
        "$B/sql/$1.sql" >"$f"
    echo "$f"
}

# The cost of authenticate(): the same point lookup, with the context from a JWT (warden.authenticate,
# on t_c) or from a plain set_config (on t_bp). Each transaction picks one of 1,000 tokens, one per
# tenant, minted with a standard HS256 implementation: a backend has almost never seen the token
# before, so every authenticate() is a full verification. Both statements read the same table.
ROOT_SCRIPTS=$ROOT/scripts python3 - "$WARDEN_JWT_SECRET" >"$OUT/tokens.tsv" <<'PY'
import os, sys
sys.path.insert(0, os.environ["ROOT_SCRIPTS"])
from mint_jwt import mint
for k in range(1000):
    tenant = "00000000-0000-0000-0000-%012d" % k
    print(f"{k}\t{tenant}\t{mint(sys.argv[1], tenant, '00000000-0000-0000-0000-0000000000f1', 'read', 86400)}"
          f"\t{mint(sys.argv[1], str(k), 'user_f1', 'read', 86400)}\t{mint(sys.argv[1], f'org_{k}', 'user_f1', 'read', 86400)}")
PY
psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE TABLE bench_tokens (k int PRIMARY KEY, tenant text NOT NULL, token text NOT NULL, token8 text NOT NULL, tokent text NOT NULL)" \
    -c "\\copy bench_tokens FROM '$OUT/tokens.tsv'" -c "GRANT SELECT ON bench_tokens TO bench_app" -c "VACUUM ANALYZE bench_tokens"
cat >"$OUT/auth-set_config.sql" <<'SQL'
\set k random(0, 999)
\set id 1 + :k + 1000 * random(0, 999)
BEGIN;
SELECT set_config('app.tenant', tenant, true) FROM bench_tokens WHERE k = :k;
SELECT amount FROM t_bp WHERE id = :id;
END;
SQL
cat >"$OUT/auth-authenticate.sql" <<'SQL'
\set k random(0, 999)
\set id 1 + :k + 1000 * random(0, 999)
BEGIN;
SELECT warden.authenticate(token) FROM bench_tokens WHERE k = :k;
SELECT amount FROM t_c WHERE id = :id;
END;
SQL
sed -e 's/authenticate(token)/authenticate(token8)/' -e 's/FROM t_c /FROM t_c8 /' "$OUT/auth-authenticate.sql" >"$OUT/auth-authenticate8.sql"
sed -e 's/authenticate(token)/authenticate(tokent)/' -e 's/FROM t_c /FROM t_ct /' "$OUT/auth-authenticate.sql" >"$OUT/auth-authenticatet.sql"

run() { # run NAME SCRIPT -> appends "ROUND NAME tps" to results
    local tps
    tps=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" \
          -T "$SECONDS_PER_RUN" -U bench_app -f "$2" bench 2>&1 | awk '/^tps = / { print $3 }')
    [ -n "$tps" ] || { say "pgbench failed for $1"; exit 1; }
    printf '%s %s %s\n' "$round" "$1" "$tps" | tee -a "$OUT/results.txt"
}

# sanity: every scenario returns the same rows for a tenant
for s in "${SCENARIOS[@]}"; do
    want="'00000000-0000-0000-0000-000000000005'"
    case $s in a8|c8) want=5 ;; at|ct) want="'org_5'" ;; esac
    n=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -qtA -U bench_app -d bench -c "BEGIN" \
        -c "$(echo "${CTX[$s]:-$CONTEXT}" | sed 's/:k::text/5::text/g')" \
        -c "SELECT count(*) FROM ${TABLE[$s]} WHERE tenant_id = $want" | tail -1)
    [ "$n" = 1000 ] || { say "scenario $s sees $n rows of tenant 5, expected 1000"; exit 1; }
done

# the plans, for the record (the first statement of each script body, with k = 5)
for q in point tenant_agg full_scan; do
    for s in "${SCENARIOS[@]}"; do
        f=$(script $q $s)
        body=$(grep -v '^\\\|^BEGIN\|^END' "$f" | grep -v 'set_config\|SET LOCAL' | sed -e 's/:k::text/5::text/g' -e 's/:id/6/')
        { echo "== $q/$s: $body"
          as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -qtA -U bench_app -d bench \
            -c "SET enable_indexscan = $([ $q = full_scan ] && echo off || echo on)" \
            -c "SET enable_bitmapscan = $([ $q = full_scan ] && echo off || echo on)" \
            -c "BEGIN" -c "$(echo "${CTX[$s]:-$CONTEXT}" | sed 's/:k::text/5::text/g')" -c "EXPLAIN (COSTS OFF) $body" -c "END"
        } >>"$OUT/plans.txt" 2>&1
    done
done

say "pgbench: $ROUNDS rounds x ${SECONDS_PER_RUN}s per run, $CLIENTS clients, -M prepared"
order=("${SCENARIOS[@]}")
for round in $(seq "$ROUNDS"); do
    for q in point tenant_agg full_scan; do
        for s in "${order[@]}"; do run "$q/$s" "$(script $q $s)"; done
    done
    run auth/set_config "$OUT/auth-set_config.sql"
    run auth/authenticate "$OUT/auth-authenticate.sql"
    run auth/authenticate8 "$OUT/auth-authenticate8.sql"
    run auth/authenticatet "$OUT/auth-authenticatet.sql"
    order=("${order[@]:1}" "${order[0]}")   # rotate who goes first
done

python3 - "$OUT/results.txt" "$ROUNDS" "$SECONDS_PER_RUN" "$CLIENTS" <<'PY' | tee "$OUT/summary.md"
# Medians of TPS per scenario, and ratios computed within each round (the runs of one round are
# adjacent in time, so slow drifts of this shared machine cancel), reported as median [min-max].
import collections, statistics, sys
tps = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, v = line.split()
    tps[name][rnd] = float(v)
def med(name):
    return statistics.median(tps[name].values())
def ratio(num, den):
    r = sorted(tps[num][k] / tps[den][k] for k in tps[num] if k in tps[den])
    return f"{statistics.median(r):.2f} [{r[0]:.2f}-{r[-1]:.2f}]"
print(f"{sys.argv[2]} rounds x {sys.argv[3]} s per run, {sys.argv[4]} clients, pgbench -M prepared; median TPS; ratios per round: median [min-max]")
print()
if "point/b" in tps:
  print("| query | (a) no RLS | (b) current_setting | (b') wrapped | (c) warden | (c2) warden direct | (c3) direct, per row | c/a | c2/a | c3/a | c/b' | b/a |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for q in ["point", "tenant_agg", "full_scan"] if "point/b" in tps else []:
    a, b, bp, c, c2, c3 = (med(f"{q}/{s}") for s in ["a", "b", "bp", "c", "c2", "c3"])
    r = lambda s, d: ratio(q + "/" + s, q + "/" + d)
    print(f"| {q} | {a:.0f} | {b:.0f} | {bp:.0f} | {c:.0f} | {c2:.0f} | {c3:.0f} | {r('c', 'a')} | {r('c2', 'a')} | {r('c3', 'a')} | {r('c', 'bp')} | {r('b', 'a')} |")
print()
print("Tenant column types, each protected table against no RLS on the same key type (same data):")
print()
print("| query | uuid c/a | bigint c8/a8 | text ct/at | bigint ratio / uuid ratio | text ratio / uuid ratio |")
print("|---|---:|---:|---:|---:|---:|")
def rr(q, num, den):
    return sorted(tps[f"{q}/{num}"][k] / tps[f"{q}/{den}"][k] for k in tps[f"{q}/{num}"] if k in tps[f"{q}/{den}"])
def rel(q, num, den):
    r = sorted((tps[f"{q}/{num}"][k] / tps[f"{q}/{den}"][k]) / (tps[f"{q}/c"][k] / tps[f"{q}/a"][k])
               for k in tps[f"{q}/{num}"] if k in tps[f"{q}/c"])
    return f"{statistics.median(r):.3f} [{r[0]:.3f}-{r[-1]:.3f}]"
for q in ["point", "tenant_agg", "full_scan"]:
    print(f"| {q} | {ratio(q + '/c', q + '/a')} | {ratio(q + '/c8', q + '/a8')} | {ratio(q + '/ct', q + '/at')} | {rel(q, 'c8', 'a8')} | {rel(q, 'ct', 'at')} |")
print()
print(f"| context per transaction | TPS | ratio to set_config |")
print("|---|---:|---:|")
print(f"| set_config('app.tenant', ..., true) | {med('auth/set_config'):.0f} | 1 |")
print(f"| warden.authenticate(jwt), uuid tenant | {med('auth/authenticate'):.0f} | {ratio('auth/authenticate', 'auth/set_config')} |")
print(f"| warden.authenticate(jwt), bigint tenant (t_c8) | {med('auth/authenticate8'):.0f} | {ratio('auth/authenticate8', 'auth/set_config')} |")
print(f"| warden.authenticate(jwt), text tenant (t_ct) | {med('auth/authenticatet'):.0f} | {ratio('auth/authenticatet', 'auth/set_config')} |")
PY
