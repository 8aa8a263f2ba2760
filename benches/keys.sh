#!/usr/bin/env bash
# Issue 7 benchmarks, on a release build, side by side in one run:
#  1. the context per transaction: warden.authenticate_key(key) against warden.authenticate(jwt)
#     and warden.set_context(...), each followed by the same point read (pgbench, 1,000 tenants,
#     one key and one token per tenant picked at random: a backend rarely sees the same one twice);
#  2. encryption throughput: warden.encrypt/decrypt against pgcrypto's pgp_sym_encrypt_bytea /
#     pgp_sym_decrypt_bytea on the same data (64 MiB as 8 KiB values, and 100-byte values), MB/s;
#  3. the PHI read log: a 1,000-row select from a table classified PHI against the same select
#     from an identical table that is not (pgbench).
# Pgbench scenarios alternate within each round; ratios are taken per round and reported as
# median [min-max]. Usage: bash benches/keys.sh   (KEYS_SECONDS=5 KEYS_ROUNDS=5 KEYS_CLIENTS=2)
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${KEYS_SECONDS:-5}
ROUNDS=${KEYS_ROUNDS:-5}
CLIENTS=${KEYS_CLIENTS:-2}
OUT=$WARDEN_RUN/bench-keys
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench_keys "${WARDEN_KEYS_BENCH_PORT:-54344}"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
shared_buffers = '1GB'
jit = off
max_parallel_workers_per_gather = 0
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
trap 'cluster_stop bench_keys' EXIT
rm -rf "$OUT" && mkdir -p "$OUT"
chown postgres "$OUT"

say "loading: 1,000 tenants x 1,000 rows, 1,000 API keys and tokens, two 1,000-row-per-tenant tables for the PHI log"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
psql -X -q -v ON_ERROR_STOP=1 -d bench >/dev/null <<'SQL'
CREATE EXTENSION warden;
CREATE EXTENSION pgcrypto;
CREATE ROLE bench_app LOGIN IN ROLE warden_context_setter;
CREATE TABLE kb (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount int NOT NULL);
INSERT INTO kb SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 1000)::text, 12, '0'))::uuid, i % 997
  FROM generate_series(1::bigint, 1000000) i;
SELECT warden.protect_table('kb');
-- the PHI log: the same rows in two tables, protected and audited; one classified PHI
CREATE TABLE phi_plain (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, dx text NOT NULL);
CREATE TABLE phi_logged (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, dx text NOT NULL);
INSERT INTO phi_plain SELECT id, tenant_id, 'code ' || amount FROM kb;
INSERT INTO phi_logged SELECT * FROM phi_plain;
SELECT warden.protect_table('phi_plain'), warden.protect_table('phi_logged');
SELECT warden.enable_audit('phi_plain'), warden.enable_audit('phi_logged');
SELECT warden.classify('phi_logged', 'PHI');
GRANT SELECT ON kb, phi_plain, phi_logged TO bench_app;
CREATE TABLE bench_creds (k int PRIMARY KEY, tenant uuid NOT NULL, token text, api_key text);
GRANT SELECT ON bench_creds TO bench_app;
VACUUM ANALYZE kb, phi_plain, phi_logged;
SQL
# one API key per tenant, created under each tenant's admin context
psql -X -q -v ON_ERROR_STOP=1 -d bench >/dev/null <<'SQL'
DO $$
DECLARE k int; t uuid;
BEGIN
    FOR k IN 0..999 LOOP
        t := ('00000000-0000-0000-0000-' || lpad(k::text, 12, '0'))::uuid;
        PERFORM warden.set_context(t, '00000000-0000-0000-0000-0000000000f1', 'admin');
        INSERT INTO bench_creds (k, tenant, api_key)
        VALUES (k, t, warden.create_api_key('bench ' || k, 'read', '{*:*:read}'));
    END LOOP;
END $$;
SQL
ROOT_SCRIPTS=$ROOT/scripts python3 - "$WARDEN_JWT_SECRET" >"$OUT/tokens.tsv" <<'PY'
import os, sys
sys.path.insert(0, os.environ["ROOT_SCRIPTS"])
from mint_jwt import mint
for k in range(1000):
    tenant = "00000000-0000-0000-0000-%012d" % k
    print(f"{k}\t{mint(sys.argv[1], tenant, '00000000-0000-0000-0000-0000000000f1', 'read', 86400)}")
PY
psql -X -q -v ON_ERROR_STOP=1 -d bench -c "CREATE TEMP TABLE t (k int, token text)" \
    -c "\\copy t FROM '$OUT/tokens.tsv'" -c "UPDATE bench_creds c SET token = t.token FROM t WHERE t.k = c.k" \
    -c "VACUUM ANALYZE bench_creds" >/dev/null

for how in set_context authenticate authenticate_key; do
    case $how in
        set_context) ctx="SELECT warden.set_context(tenant, '00000000-0000-0000-0000-0000000000f1', 'read') FROM bench_creds WHERE k = :k;" ;;
        authenticate) ctx="SELECT warden.authenticate(token) FROM bench_creds WHERE k = :k;" ;;
        authenticate_key) ctx="SELECT warden.authenticate_key(api_key) FROM bench_creds WHERE k = :k;" ;;
    esac
    cat >"$OUT/auth-$how.sql" <<SQL
\\set k random(0, 999)
\\set id 1000 + :k + 1000 * random(0, 998)
BEGIN;
$ctx
SELECT amount FROM kb WHERE id = :id;
END;
SQL
done
for t in phi_plain phi_logged; do
    cat >"$OUT/phi-$t.sql" <<SQL
\\set k random(0, 99)
BEGIN;
SELECT warden.set_context(('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000f1', 'read');
SELECT id, dx FROM $t;
END;
SQL
done

# sanity: each way of authenticating sees tenant 5's row; each PHI select returns 1,000 rows
for how in set_context authenticate authenticate_key; do
    n=$(sed -e 's/:k/5/g' -e 's/:id/1005/' "$OUT/auth-$how.sql" | grep -v '^\\' |
        as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -qtA -U bench_app -d bench | tail -1)
    [ "$n" = "$((1005 % 997))" ] || { say "auth/$how read $n"; exit 1; }
done
for t in phi_plain phi_logged; do
    n=$(sed -e 's/:k/5/g' -e "s/SELECT id, dx FROM $t/SELECT count(*) FROM (SELECT id, dx FROM $t) s/" "$OUT/phi-$t.sql" | grep -v '^\\' |
        as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -qtA -U bench_app -d bench | tail -1)
    [ "$n" = 1000 ] || { say "phi/$t returned $n rows"; exit 1; }
done

run() { # run NAME SCRIPT -> appends "ROUND NAME tps" to results
    local tps
    tps=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" \
          -T "$SECONDS_PER_RUN" -U bench_app -f "$2" bench 2>&1 | awk '/^tps = / { print $3 }')
    [ -n "$tps" ] || { say "pgbench failed for $1"; exit 1; }
    printf '%s %s %s\n' "$round" "$1" "$tps" | tee -a "$OUT/results.txt"
}

say "pgbench: $ROUNDS rounds x ${SECONDS_PER_RUN}s per run, $CLIENTS clients, -M prepared"
order=(set_context authenticate authenticate_key)
for round in $(seq "$ROUNDS"); do
    for how in "${order[@]}"; do run "auth/$how" "$OUT/auth-$how.sql"; done
    order=("${order[@]:1}" "${order[0]}")
    if [ $((round % 2)) = 1 ]; then
        run phi/plain "$OUT/phi-phi_plain.sql"; run phi/logged "$OUT/phi-phi_logged.sql"
    else
        run phi/logged "$OUT/phi-phi_logged.sql"; run phi/plain "$OUT/phi-phi_plain.sql"
    fi
done
logged=$(psql -X -qtA -d bench -c "SELECT count(*) FROM (SELECT action FROM warden.audit_events UNION ALL SELECT action FROM warden.audit_pending) e WHERE action = 'phi_read'")
say "PHI read events recorded: $logged"

say "encryption throughput (one session; 64 MiB as 8 KiB values, then 100,000 values of 100 bytes)"
psql -X -qtA -v ON_ERROR_STOP=1 -d bench >"$OUT/crypto.txt" <<'SQL'
BEGIN;
SELECT warden.set_context('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000f1', 'admin') \g /dev/null
SELECT warden.create_key('bench') \g /dev/null
CREATE TEMP TABLE big AS SELECT i, gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024)
    || gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024) AS v
  FROM generate_series(1, 8192) i;
CREATE TEMP TABLE small AS SELECT i, gen_random_bytes(100) AS v FROM generate_series(1, 100000) i;
CREATE FUNCTION pg_temp.mbps(label text, q text, mb float8) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; best float8 := 1e9; s float8;
BEGIN
    FOR r IN 1..3 LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        s := extract(epoch FROM clock_timestamp() - t0);
        best := least(best, s);
    END LOOP;
    RETURN label || E'\t' || round((mb / best)::numeric, 1) || E'\t' || round((best * 1000)::numeric, 1);
END $$;
CREATE TEMP TABLE enc AS SELECT i, warden.encrypt(v, 'bench', int4send(i)) AS w, pgp_sym_encrypt_bytea(v, 'a bench passphrase') AS p FROM big;
CREATE TEMP TABLE enc_small AS SELECT i, warden.encrypt(v, 'bench', int4send(i)) AS w, pgp_sym_encrypt_bytea(v, 'a bench passphrase') AS p FROM small;
SELECT pg_temp.mbps('8k/warden.encrypt', $q$SELECT count(warden.encrypt(v, 'bench', int4send(i))) FROM big$q$, 64);
SELECT pg_temp.mbps('8k/warden.decrypt', $q$SELECT count(warden.decrypt(w, int4send(i))) FROM enc$q$, 64);
SELECT pg_temp.mbps('8k/pgp_sym_encrypt_bytea', $q$SELECT count(pgp_sym_encrypt_bytea(v, 'a bench passphrase')) FROM big$q$, 64);
SELECT pg_temp.mbps('8k/pgp_sym_decrypt_bytea', $q$SELECT count(pgp_sym_decrypt_bytea(p, 'a bench passphrase')) FROM enc$q$, 64);
SELECT pg_temp.mbps('100b/warden.encrypt', $q$SELECT count(warden.encrypt(v, 'bench', int4send(i))) FROM small$q$, 100000 * 100 / 1048576.0);
SELECT pg_temp.mbps('100b/warden.decrypt', $q$SELECT count(warden.decrypt(w, int4send(i))) FROM enc_small$q$, 100000 * 100 / 1048576.0);
SELECT pg_temp.mbps('100b/pgp_sym_encrypt_bytea', $q$SELECT count(pgp_sym_encrypt_bytea(v, 'a bench passphrase')) FROM small$q$, 100000 * 100 / 1048576.0);
SELECT pg_temp.mbps('100b/pgp_sym_decrypt_bytea', $q$SELECT count(pgp_sym_decrypt_bytea(p, 'a bench passphrase')) FROM enc_small$q$, 100000 * 100 / 1048576.0);
COMMIT;
SQL
cat "$OUT/crypto.txt"

python3 - "$OUT/results.txt" "$OUT/crypto.txt" "$ROUNDS" "$SECONDS_PER_RUN" "$CLIENTS" <<'PY' | tee "$OUT/summary.md"
import collections, statistics, sys
tps = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, v = line.split()
    tps[name][rnd] = float(v)
med = lambda n: statistics.median(tps[n].values())
def ratio(num, den):
    r = sorted(tps[num][k] / tps[den][k] for k in tps[num] if k in tps[den])
    return f"{statistics.median(r):.3f} [{r[0]:.3f}-{r[-1]:.3f}]"
print(f"{sys.argv[3]} rounds x {sys.argv[4]} s per run, {sys.argv[5]} clients, pgbench -M prepared; median TPS; ratios per round: median [min-max]")
print()
print("| context per transaction (+ one point read) | TPS | ratio to set_context | ratio to authenticate |")
print("|---|---:|---:|---:|")
for n, label in [("set_context", "warden.set_context(...)"), ("authenticate", "warden.authenticate(jwt)"), ("authenticate_key", "warden.authenticate_key(key)")]:
    print(f"| {label} | {med('auth/' + n):.0f} | {ratio('auth/' + n, 'auth/set_context')} | {ratio('auth/' + n, 'auth/authenticate')} |")
print()
print("| 1,000-row select | TPS | ratio |")
print("|---|---:|---:|")
print(f"| table not classified | {med('phi/plain'):.0f} | 1 |")
print(f"| table classified PHI (one phi_read event per select) | {med('phi/logged'):.0f} | {ratio('phi/logged', 'phi/plain')} |")
print()
rows = dict((l.split("\t")[0], (float(l.split("\t")[1]), l.split("\t")[2].strip())) for l in open(sys.argv[2]) if "\t" in l)
print("| data | operation | warden (MB/s) | pgcrypto pgp_sym_*_bytea (MB/s) | warden / pgcrypto |")
print("|---|---|---:|---:|---:|")
for size, label in [("8k", "8 KiB values, 64 MiB"), ("100b", "100-byte values, 100,000")]:
    for op in ["encrypt", "decrypt"]:
        w = rows[f"{size}/warden.{op}"][0]
        p = rows[f"{size}/pgp_sym_{op}_bytea"][0]
        print(f"| {label} | {op} | {w:.1f} | {p:.1f} | {w / p:.1f} |")
PY
