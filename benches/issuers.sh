#!/usr/bin/env bash
# Identity-provider tokens, on a release build, side by side in one run: warden.authenticate(token)
# per transaction followed by the same point read (pgbench -M prepared, 1,000 text tenants x 1,000
# rows), for HS256 (warden.jwt_secret) and RS256 (2048 bits), ES256 and EdDSA tokens of a registered
# issuer (PyJWT with cryptography mints them), each
#   cold: every transaction a token picked at random from 20,000 (the backend's verified-token
#         cache holds 1,024: a backend almost never sees a token twice, so every authenticate is a
#         full signature check), and
#   warm: each client always the same token (a pooled connection reusing its token: a SHA-256 of
#         the token and a cache lookup).
# Added time per transaction = 1e6/TPS(x) - 1e6/TPS(HS256 warm), per round, at 1 client (one
# backend, so TPS is the inverse of the transaction's latency). Scenarios alternate within each
# round; ratios and differences are taken per round and reported as median [min-max].
# Usage: bash benches/issuers.sh   (ISSUERS_SECONDS=5 ISSUERS_ROUNDS=5 ISSUERS_CLIENTS=1)
source "$(dirname "$0")/../scripts/lib.sh"
SECONDS_PER_RUN=${ISSUERS_SECONDS:-5}
ROUNDS=${ISSUERS_ROUNDS:-5}
CLIENTS=${ISSUERS_CLIENTS:-1}
COLD=20000
OUT=$WARDEN_RUN/bench-issuers
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench_issuers "${WARDEN_ISSUERS_BENCH_PORT:-54346}"
cat >>"$CLUSTER_DIR/data/postgresql.conf" <<CONF
shared_buffers = '1GB'
jit = off
max_parallel_workers_per_gather = 0
CONF
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
trap 'cluster_stop bench_issuers' EXIT
# one client against one backend on a 2-core machine: the server (and every backend it forks) on
# the first core, pgbench on the second, so that no run lands on a shared core by chance (unpinned,
# runs of the same script came out at 13,500 or 27,000 TPS)
PIN_SERVER=${ISSUERS_PIN_SERVER:-0}
PIN_CLIENT=${ISSUERS_PIN_CLIENT:-1}
postmaster=$(head -1 "$CLUSTER_DIR/data/postmaster.pid")
for pid in $postmaster $(pgrep -P "$postmaster"); do taskset -a -p -c "$PIN_SERVER" "$pid" >/dev/null; done
rm -rf "$OUT" && mkdir -p "$OUT"
chown postgres "$OUT"

say "loading: 1,000 tenants x 1,000 rows; minting $COLD tokens per algorithm"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE bench"
psql -X -q -v ON_ERROR_STOP=1 -d bench >/dev/null <<'SQL'
CREATE EXTENSION warden;
CREATE ROLE bench_app LOGIN;
CREATE TABLE kb (id bigint PRIMARY KEY, tenant_id text NOT NULL, amount int NOT NULL);
INSERT INTO kb SELECT i, 'org_' || (i % 1000), i % 997 FROM generate_series(0::bigint, 999999) i;
SELECT warden.protect_table('kb');
GRANT SELECT ON kb TO bench_app;
CREATE TABLE bench_tokens (alg text NOT NULL, k int NOT NULL, token text NOT NULL, PRIMARY KEY (alg, k));
GRANT SELECT ON bench_tokens TO bench_app;
SQL
python3 - "$WARDEN_JWT_SECRET" "$COLD" "$OUT/tokens.tsv" "$OUT/jwks.json" <<'PY'
import json, sys, time
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
secret, n, tokens, jwks = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
keys = {"RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate()}
to_jwk = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}
published = []
for alg, key in keys.items():
    d = to_jwk[alg].to_jwk(key.public_key(), as_dict=True)
    d.update(kid=alg.lower(), use="sig")
    published.append(d)
json.dump({"keys": published}, open(jwks, "w"))
now = int(time.time())
with open(tokens, "w") as out:
    for k in range(n):
        claims = {"tenant_id": f"org_{k % 1000}", "sub": f"user_{k}", "role": "read", "iat": now, "exp": now + 86400}
        out.write(f"HS256\t{k}\t{jwt.encode(claims, secret, algorithm='HS256')}\n")
        for alg, key in keys.items():
            c = dict(claims, iss="https://bench.idp.example.test")
            out.write(f"{alg}\t{k}\t{jwt.encode(c, key, algorithm=alg, headers={'kid': alg.lower()})}\n")
PY
psql -X -q -v ON_ERROR_STOP=1 -d bench -v jwks="$(cat "$OUT/jwks.json")" >/dev/null <<SQL
\\copy bench_tokens FROM '$OUT/tokens.tsv'
VACUUM ANALYZE kb, bench_tokens;
SELECT warden.register_issuer('https://bench.idp.example.test', :'jwks'::jsonb);
SQL

SCENARIOS=()
for alg in HS256 RS256 ES256 EdDSA; do
    for temp in cold warm; do
        if [ $temp = cold ]; then pick="\\set k random(0, $((COLD - 1)))"; else pick="\\set k :client_id"; fi
        cat >"$OUT/$alg-$temp.sql" <<SQL
$pick
\\set t :k % 1000
\\set id :t + 1000 * random(0, 999)
BEGIN;
SELECT warden.authenticate(token) FROM bench_tokens WHERE alg = '$alg' AND k = :k;
SELECT amount FROM kb WHERE id = :id;
END;
SQL
        SCENARIOS+=("$alg-$temp")
    done
done

# sanity: every token authenticates and reads its tenant's row
for s in "${SCENARIOS[@]}"; do
    n=$(sed -e 's/:k %/5 %/; s/= :k;/= 5;/' -e 's/:id/5005/' "$OUT/$s.sql" | grep -v '^\\' |
        as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -qtA -v ON_ERROR_STOP=1 -U bench_app -d bench | tail -1)
    [ "$n" = "$((5005 % 997))" ] || { say "$s read '$n'"; exit 1; }
done

run() { # run NAME SCRIPT -> appends "ROUND NAME tps" to results
    local tps
    tps=$(as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" taskset -c "$PIN_CLIENT" "$PGBIN/pgbench" -n -M prepared -c "$CLIENTS" -j "$CLIENTS" \
          -T "$SECONDS_PER_RUN" -U bench_app -f "$2" bench 2>&1 | awk '/^tps = / { print $3 }')
    [ -n "$tps" ] || { say "pgbench failed for $1"; exit 1; }
    printf '%s %s %s\n' "$round" "$1" "$tps" | tee -a "$OUT/results.txt"
}

say "pgbench: $ROUNDS rounds x ${SECONDS_PER_RUN}s per run, $CLIENTS clients, -M prepared"
order=("${SCENARIOS[@]}")
for round in $(seq "$ROUNDS"); do
    for s in "${order[@]}"; do run "$s" "$OUT/$s.sql"; done
    order=("${order[@]:1}" "${order[0]}")
done

python3 - "$OUT/results.txt" "$ROUNDS" "$SECONDS_PER_RUN" "$CLIENTS" <<'PY' | tee "$OUT/summary.md"
import collections, statistics, sys
tps = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rnd, name, v = line.split()
    tps[name][rnd] = float(v)
clients = int(sys.argv[4])
med = lambda n: statistics.median(tps[n].values())
def per_round(f, a, b):
    r = sorted(f(tps[a][k], tps[b][k]) for k in tps[a] if k in tps[b])
    return statistics.median(r), r[0], r[-1]
base = "HS256-warm"
print(f"{sys.argv[2]} rounds x {sys.argv[3]} s per run, {clients} client(s), pgbench -M prepared; median TPS;"
      " per-round ratio and added time against HS256 warm: median [min-max]")
print()
print("| authenticate(token) + point read | TPS | ratio to HS256 warm | added us per transaction |")
print("|---|---:|---:|---:|")
for alg in ["HS256", "RS256", "ES256", "EdDSA"]:
    for temp in ["cold", "warm"]:
        n = f"{alg}-{temp}"
        r = per_round(lambda x, y: x / y, n, base)
        us = per_round(lambda x, y: clients * (1e6 / x - 1e6 / y), n, base)
        print(f"| {alg} {temp} | {med(n):.0f} | {r[0]:.3f} [{r[1]:.3f}-{r[2]:.3f}] | {us[0]:.1f} [{us[1]:.1f}-{us[2]:.1f}] |")
PY
