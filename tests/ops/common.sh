# Helpers for the operations tests in tests/ops/ (bash, psql and real clusters). Source scripts/lib.sh
# first. Each check prints "ok" or "not ok" with what it compared; ops_summary exits non-zero when any
# check failed.
OPS_PASSED=0
OPS_FAILED=0
OPS=$ROOT/tests/ops
ACME=aaaaaaaa-0000-0000-0000-00000000000a
GLOBEX=bbbbbbbb-0000-0000-0000-00000000000b
ACTOR=00000000-0000-0000-0000-0000000000f1

# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        OPS_PASSED=$((OPS_PASSED + 1)); echo "ok - $1"
    else
        OPS_FAILED=$((OPS_FAILED + 1)); echo "not ok - $1"; echo "    expected: $2"; echo "    actual:   $3"
    fi
}

# check_true NAME COMMAND...: the command must succeed.
check_true() {
    local name=$1; shift
    if "$@"; then check "$name" yes yes; else check "$name" yes no; fi
}

ops_summary() {
    echo "# $1: $OPS_PASSED passed, $OPS_FAILED failed"
    [ "$OPS_FAILED" -eq 0 ]
}

# q DB USER SQL [psql args...]: one statement's rows, unaligned; errors as "ERROR <sqlstate>".
q() {
    local db=$1 user=$2 sql=$3; shift 3
    psql -X -A -t -q -d "$db" -U "$user" -v VERBOSITY=sqlstate "$@" -c "$sql" 2>&1 | sed -E 's/^ERROR: +([0-9A-Z]{5}).*/ERROR \1/'
}

# qf DB USER: a script on stdin, in one session; errors as "ERROR <sqlstate>".
qf() {
    local db=$1 user=$2; shift 2
    psql -X -A -t -q -d "$db" -U "$user" -v VERBOSITY=sqlstate "$@" 2>&1 | sed -E 's/^ERROR: +([0-9A-Z]{5}).*/ERROR \1/'
}

# drop_db DB: DROP DATABASE IF EXISTS, after releasing the holds an earlier run left in it (a
# database a hold covers cannot be dropped).
drop_db() {
    if [ "$(psql -X -qAt -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]; then
        psql -X -q -d "$1" -c "SELECT warden.release_hold(h.id, 'test cleanup') FROM warden.holds h
                                WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold = h.id)" >/dev/null 2>&1 || true
    fi
    psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1"
}

# mint TENANT LEVEL [TTL] [SECRET]: a token signed with the cluster's secret.
mint() { python3 "$ROOT/scripts/mint_jwt.py" "${4:-$WARDEN_JWT_SECRET}" "$1" "$ACTOR" "$2" "${3:-300}"; }

# forge TOKEN TENANT: TOKEN with its tenant claim replaced and the old signature kept.
forge() {
    python3 - "$1" "$2" <<'PY'
import base64, json, sys
h, p, s = sys.argv[1].split('.')
claims = json.loads(base64.urlsafe_b64decode(p + '=='))
claims['tenant_id'] = sys.argv[2]
p = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()
print(f'{h}.{p}.{s}')
PY
}

# A long-lived psql session fed through a FIFO, to hold a connection or a transaction open while
# something else happens. live_open NAME psql-args...; live_run NAME SQL (prints the output);
# live_close NAME.
LIVE=$WARDEN_RUN/live-sessions
declare -A LIVE_FD LIVE_N
live_open() {
    local n=$1 fd; shift
    mkdir -p "$LIVE"; rm -f "$LIVE/$n.in" "$LIVE/$n.out"
    mkfifo "$LIVE/$n.in"
    psql -X -A -t -q -v VERBOSITY=sqlstate "$@" <"$LIVE/$n.in" >"$LIVE/$n.out" 2>&1 &
    exec {fd}>"$LIVE/$n.in"
    LIVE_FD[$n]=$fd
    LIVE_N[$n]=0
}
live_run() {
    local n=$1 sql=$2 k marker out from
    k=$((LIVE_N[$n] + 1)); LIVE_N[$n]=$k
    # unique even when live_run runs in a command substitution (a subshell, where the counter's
    # increment is lost): a repeated marker would be found at once, before the session answered
    marker="__live_${n}_${k}_$(date +%s%N)_$RANDOM"
    from=$(wc -l <"$LIVE/$n.out")
    printf '%s\n\\echo %s\n' "$sql" "$marker" >&"${LIVE_FD[$n]}"
    for _ in $(seq 600); do
        grep -q "^$marker\$" "$LIVE/$n.out" && break
        sleep 0.05
    done
    out=$(tail -n +"$((from + 1))" "$LIVE/$n.out" | sed "/^$marker\$/,\$d" | sed -E 's/^ERROR: +([0-9A-Z]{5}).*/ERROR \1/')
    grep -q "^$marker\$" "$LIVE/$n.out" || out="$out (session $n did not answer)"
    printf '%s' "$out"
}
live_close() {
    local n=$1
    printf '\\q\n' >&"${LIVE_FD[$n]}" 2>/dev/null || true
    eval "exec ${LIVE_FD[$n]}>&-"
    rm -f "$LIVE/$n.in"
}

# load_fixture DB: roles (cluster-wide, created once), a protected table, a protected partitioned
# table, a guarded schema, and rows of two tenants.
load_fixture() { psql -X -q -v ON_ERROR_STOP=1 -d "$1" -f "$OPS/fixture.sql" >/dev/null; }

# attack_run LABEL DB: what the application role can and cannot do, asserted exactly. Run against every
# database the operations tests produce (upgraded, restored, replica).
attack_run() {
    local label=$1 db=$2 ta tb forged read_only=${3:-}
    ta=$(mint $ACME write); tb=$(mint $GLOBEX delete)
    forged=$(forge "$ta" $GLOBEX)
    check "$label: no context, no rows" "0|0" "$(q "$db" ops_app "SELECT (SELECT count(*) FROM docs), (SELECT count(*) FROM events)")"
    check "$label: acme sees its own rows only" "3|4|0" "$(qf "$db" ops_app -v t="$ta" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'t') \g /dev/null
SELECT (SELECT count(*) FROM docs), (SELECT count(*) FROM events),
       (SELECT count(*) FROM docs WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-00000000000b');
COMMIT;
SQL
)"
    check "$label: globex sees its own rows only" "2|2" "$(qf "$db" ops_app -v t="$tb" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'t') \g /dev/null
SELECT (SELECT count(*) FROM docs), (SELECT count(*) FROM events);
COMMIT;
SQL
)"
    check "$label: a forged tenant claim is refused" "ERROR 28000" "$(q "$db" ops_app "SELECT warden.authenticate('$forged')")"
    check "$label: SET of the carrier with a forged token is refused, and gives no context" "refused|refused|none" \
        "$(qf "$db" ops_app <<SQL | sed -E 's/^ERROR (42501|28000)$/refused/' | paste -sd'|'
BEGIN;
SAVEPOINT s;
SET LOCAL warden.context_token = '$forged';
ROLLBACK TO s;
SELECT set_config('warden.context_token', '$forged', false);
ROLLBACK TO s;
SELECT coalesce(warden.current_tenant()::text, 'none');
COMMIT;
SQL
)"
    check "$label: SET LOCAL of a valid token is a context for that transaction only" "2|0" "$(qf "$db" ops_app <<SQL | paste -sd'|'
BEGIN;
SET LOCAL warden.context_token = '$tb';
SELECT count(*) FROM docs;
COMMIT;
SELECT count(*) FROM docs;
SQL
)"
    check "$label: set_context is for the middleware role only" "ERROR 42501" \
        "$(q "$db" ops_app "SELECT warden.set_context('$GLOBEX', '$ACTOR', 'admin')")"
    check "$label: the context ends at COMMIT" "3|0" "$(qf "$db" ops_app -v t="$ta" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'t') \g /dev/null
SELECT count(*) FROM docs \gset
COMMIT;
SELECT :count, count(*) FROM docs;
SQL
)"
    if [ -n "$read_only" ]; then
        check "$label: writes fail as read-only" "ERROR 25006" "$(qf "$db" ops_app -v t="$ta" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'t') \g /dev/null
INSERT INTO docs (tenant_id, title) VALUES ('aaaaaaaa-0000-0000-0000-00000000000a', 'x');
SQL
)"
        return
    fi
    check "$label: writing for another tenant is refused; TRUNCATE is refused" "ERROR 42501|0|ERROR 42501" "$(qf "$db" ops_app -v t="$ta" <<'SQL' | paste -sd'|'
BEGIN;
SELECT warden.authenticate(:'t') \g /dev/null
SAVEPOINT s;
INSERT INTO docs (tenant_id, title) VALUES ('bbbbbbbb-0000-0000-0000-00000000000b', 'planted');
ROLLBACK TO s;
WITH u AS (UPDATE docs SET title = title WHERE tenant_id = 'bbbbbbbb-0000-0000-0000-00000000000b' RETURNING 1) SELECT count(*) FROM u;
TRUNCATE docs;
ROLLBACK;
SQL
)"
}
