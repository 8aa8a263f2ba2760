#!/usr/bin/env bash
# Paired comparison of two builds of the warden library on one cluster: the cost of a context per
# transaction (authenticate + a point lookup on a protected table, as in benches/run.sh), alternating
# the two libraries round by round (each swap: atomic install + restart), so that both see the same
# machine. The database is created at the older version's SQL, which both libraries run.
#
# Usage: bash benches/ab_libraries.sh OLD.so NEW.so [OLD_VERSION]   (OLD_VERSION defaults to 0.1.0)
# AB_WORKLOAD=point (default: authenticate + a point lookup) or audit_insert (authenticate + an
# INSERT into a protected, audited table: the audit trigger's event and the sealer's work) or update
# (authenticate + an UPDATE of one row of a protected table: the legal-hold row guard, no hold).
# AB_SETUP_SQL=file.sql runs after the setup (benches/deleted_accounts.sql: the deleted-account set
# that 0.4.0's authenticate checks, in a database at 0.3.0's SQL).
# e.g. the 0.1.0 library: git worktree add /tmp/w010 <0.1.0 commit> &&
#      (cd /tmp/w010 && CARGO_TARGET_DIR=$PWD/../w010-target cargo pgrx package --pg-config ...)
source "$(dirname "$0")/../scripts/lib.sh"
OLD=$1 NEW=$2 OLDV=${3:-0.1.0}
ROUNDS=${BENCH_ROUNDS:-8} SECS=${BENCH_SECONDS:-5} CLIENTS=${BENCH_CLIENTS:-2}
OUT=$WARDEN_RUN/ab-results
LIB=$($PG_CONFIG --pkglibdir)/warden.so
cp "$LIB" "$WARDEN_RUN/warden-installed.so"
trap 'install_file "$WARDEN_RUN/warden-installed.so" "$LIB"; cluster_stop ab' EXIT
rm -rf "$OUT" && mkdir -p "$OUT" && chown postgres "$OUT"
install_file "$OLD" "$LIB"
cluster_start ab "${WARDEN_BENCH_PORT:-54341}"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE ab"
psql -X -q -v ON_ERROR_STOP=1 -d ab <<SQL >/dev/null
CREATE EXTENSION warden VERSION '$OLDV';
CREATE ROLE ab_app LOGIN;
CREATE TABLE t_c (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount int NOT NULL);
INSERT INTO t_c SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 1000)::text, 12, '0'))::uuid, i % 10007
  FROM generate_series(1::bigint, 1000000) i;
SELECT warden.protect_table('t_c');
GRANT SELECT, UPDATE ON t_c TO ab_app;
CREATE TABLE t_a (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
SELECT warden.protect_table('t_a');
SELECT warden.enable_audit('t_a');
GRANT SELECT, INSERT ON t_a TO ab_app;
GRANT USAGE ON SEQUENCE t_a_id_seq TO ab_app;
CREATE TABLE tokens (k int PRIMARY KEY, token text NOT NULL);
GRANT SELECT ON tokens TO ab_app;
VACUUM ANALYZE t_c;
SQL
ROOT_SCRIPTS=$ROOT/scripts python3 - "$WARDEN_JWT_SECRET" >"$OUT/tokens.tsv" <<'PY'
import os, sys
sys.path.insert(0, os.environ["ROOT_SCRIPTS"])
from mint_jwt import mint
for k in range(1000):
    print(f"{k}\t{mint(sys.argv[1], '00000000-0000-0000-0000-%012d' % k, '00000000-0000-0000-0000-0000000000f1', 'write', 86400)}")
PY
psql -X -q -d ab -c "\\copy tokens FROM '$OUT/tokens.tsv'"
# optional extra setup (SQL file in AB_SETUP_SQL), e.g. what only the newer library reads
if [ -n "${AB_SETUP_SQL:-}" ]; then psql -X -q -v ON_ERROR_STOP=1 -d ab -f "$AB_SETUP_SQL" >/dev/null; fi
WORKLOAD=${AB_WORKLOAD:-point}
case $WORKLOAD in
point) cat >"$OUT/auth.sql" <<'SQL'
\set k random(0, 999)
\set id 1 + :k + 1000 * random(0, 999)
BEGIN;
SELECT warden.authenticate(token) FROM tokens WHERE k = :k;
SELECT amount FROM t_c WHERE id = :id;
END;
SQL
;;
audit_insert) cat >"$OUT/auth.sql" <<'SQL'
\set k random(0, 999)
BEGIN;
SELECT warden.authenticate(token) FROM tokens WHERE k = :k;
INSERT INTO t_a (tenant_id, body) VALUES (warden.current_tenant(), 'an audited row');
END;
SQL
;;
update) cat >"$OUT/auth.sql" <<'SQL'
\set k random(0, 999)
\set id :k + 1000 * random(1, 999)
BEGIN;
SELECT warden.authenticate(token) FROM tokens WHERE k = :k;
UPDATE t_c SET amount = amount + 1 WHERE id = :id;
END;
SQL
;;
*) say "AB_WORKLOAD is point, audit_insert or update"; exit 2 ;;
esac
run() {
    as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" \
        -T "$SECS" -U ab_app -f "$OUT/auth.sql" ab 2>&1 | awk '/^tps = / { print $3 }'
}
restart() { as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null; }
say "A/B ($WORKLOAD): $ROUNDS rounds x ${SECS}s, $CLIENTS clients; old = $OLD, new = $NEW"
for round in $(seq "$ROUNDS"); do
    for which in old new; do
        [ $which = old ] && install_file "$OLD" "$LIB" || install_file "$NEW" "$LIB"
        restart
        run >/dev/null   # warm-up
        echo "$round $which $(run)" | tee -a "$OUT/results.txt"
    done
done
python3 - "$OUT/results.txt" <<'PY'
import collections, statistics, sys
t = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    r, w, v = line.split(); t[w][r] = float(v)
ratios = sorted(t["new"][r] / t["old"][r] for r in t["new"])
print(f"old median {statistics.median(t['old'].values()):.0f} TPS, new median {statistics.median(t['new'].values()):.0f} TPS, "
      f"new/old per round: median {statistics.median(ratios):.3f} [{ratios[0]:.3f}-{ratios[-1]:.3f}]")
PY
