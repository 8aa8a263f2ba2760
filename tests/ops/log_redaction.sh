#!/usr/bin/env bash
# A clean server log (warden.log_redaction, src/postgres/log.rs): with log_statement = 'all' for a
# database, one session writes a JWT literal, an API key literal, SET LOCAL of the carrier, CREATE and
# ALTER ROLE with passwords, a registered personal-data value as a bind parameter, and the same value
# in a unique violation. The cluster's own log file then holds none of them, and says what was
# removed; the client still received the whole error. With the setting off (a superuser), the same
# session leaves them in the log (the test can fail).
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
port=${WARDEN_LOG_PORT:-54338}

cluster_start log_redaction "$port"
trap 'cluster_stop log_redaction' EXIT
LOG=$CLUSTER_DIR/server.log
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
CREATE DATABASE logs;
ALTER DATABASE logs SET log_statement = 'all';
\c logs
CREATE EXTENSION warden;
CREATE ROLE log_app LOGIN;
CREATE TABLE users (id int PRIMARY KEY, tenant_id uuid NOT NULL, email text NOT NULL UNIQUE);
CREATE TABLE orders (id int PRIMARY KEY, tenant_id uuid NOT NULL, note text NOT NULL);
SELECT warden.protect_table('users'), warden.protect_table('orders');
SELECT warden.register_personal_data('users', 'id', '{email}', 'redact');
GRANT SELECT, INSERT ON users, orders TO log_app;
SQL

# session NAME EMAIL: the session of the issue, as the application (its credentials made up for it)
session() {
    local tag=$1 email=$2 jwt key
    jwt=$(mint "$ACME" write)
    key="wdn_0123456789ab_${tag}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; key=${key:0:60}
    q logs log_app "SELECT warden.authenticate('$jwt')" >/dev/null
    q logs log_app "BEGIN; SET LOCAL warden.context_token = '$jwt'; COMMIT;" >/dev/null
    q logs log_app "SELECT warden.authenticate_key('$key')" >/dev/null
    q logs postgres "CREATE ROLE role_$tag LOGIN PASSWORD 'first-secret-$tag'" >/dev/null
    q logs postgres "ALTER ROLE role_$tag PASSWORD 'second-secret-$tag'" >/dev/null
    cat >"$CLUSTER_DIR/insert.sql" <<SQL
BEGIN;
SELECT warden.authenticate(:jwt);
INSERT INTO users VALUES (:id, '$ACME', :email);
INSERT INTO orders VALUES (:id, '$ACME', :note);
COMMIT;
SQL
    chown postgres "$CLUSTER_DIR/insert.sql"
    # the extended protocol: the values travel as bind parameters ($1 = '...')
    for id in 1 2; do
        as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" "$PGBIN/pgbench" -n -t 1 -M extended -U log_app \
            -D jwt="$jwt" -D id="$id$RANDOM" -D email="$email" -D note="order-note-$tag" -f "$CLUSTER_DIR/insert.sql" logs 2>&1
    done
    # (the application's own unique violation has no values: PostgreSQL leaves them out under row
    # level security) the owner's or a superuser's has them
    q logs postgres "INSERT INTO users VALUES (0, '$ACME', '$email')" -v VERBOSITY=default 2>&1
    q logs postgres "INSERT INTO users VALUES (-1, '$ACME', '$email')" -v VERBOSITY=default 2>&1
    echo "$jwt" >"$CLUSTER_DIR/jwt-$tag"; echo "$key" >"$CLUSTER_DIR/key-$tag"
}

: >"$LOG.mark"
start=$(wc -l <"$LOG")
out=$(session on alice-on@example.test)
check "the client still receives the unique violation's whole detail" yes \
    "$(grep -q 'Key (email)=(alice-on@example.test) already exists' <<<"$out" && echo yes || echo no)"
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -w restart -l "$LOG" >/dev/null   # flush, and a fresh log tail
logged=$(tail -n +"$((start + 1))" "$LOG")
absent() { # absent NAME STRING: STRING is nowhere in the log
    check "not in the server log: $1" 0 "$(grep -cF -- "$2" <<<"$logged" || true)"
}
absent "the JWT" "$(cut -d. -f2 "$CLUSTER_DIR/jwt-on")"
absent "the API key" "$(cat "$CLUSTER_DIR/key-on")"
absent "CREATE ROLE's password" "first-secret-on"
absent "ALTER ROLE's password" "second-secret-on"
absent "the registered column's value (bind parameter and unique violation)" "alice-on@example.test"
check "the markers say what was removed" yes \
    "$(grep -q '<redacted: token>' <<<"$logged" && grep -q '<redacted: API key>' <<<"$logged" &&
       grep -q "PASSWORD '<redacted>'" <<<"$logged" && grep -q 'Key (email)=(<redacted: personal data>) already exists' <<<"$logged" &&
       grep -q "\$2 = '<redacted: personal data>'" <<<"$logged" && echo yes || echo no)"
check "the unique violation is still logged with its level and statement" yes \
    "$(grep -q 'ERROR:  duplicate key value violates unique constraint "users_email_key"' <<<"$logged" &&
       grep -q 'STATEMENT:  INSERT INTO users VALUES' <<<"$logged" && echo yes || echo no)"
check "a table without personal data keeps its parameters" yes \
    "$(grep -q "order-note-on" <<<"$logged" && echo yes || echo no)"
check "the application role cannot turn it off" "ERROR 42501" "$(q logs log_app "SET warden.log_redaction = off")"

# the same session with the setting off: everything is there (what the redaction removes is real)
psql -X -q -d postgres -c "ALTER SYSTEM SET warden.log_redaction = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
start=$(wc -l <"$LOG")
out=$(session off alice-off@example.test)
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -w restart -l "$LOG" >/dev/null
logged=$(tail -n +"$((start + 1))" "$LOG")
present() { check "with log_redaction off, in the log: $1" yes "$(grep -qF -- "$2" <<<"$logged" && echo yes || echo no)"; }
present "the JWT" "$(cut -d. -f2 "$CLUSTER_DIR/jwt-off")"
present "the API key" "$(cat "$CLUSTER_DIR/key-off")"
present "the password" "second-secret-off"
present "the registered column's value" "alice-off@example.test"
psql -X -q -d postgres -c "ALTER SYSTEM RESET warden.log_redaction" -c "SELECT pg_reload_conf()" >/dev/null

# csvlog and jsonlog (the logging collector) get the same redacted messages
psql -X -q -d postgres -c "ALTER SYSTEM SET logging_collector = on" -c "ALTER SYSTEM SET log_destination = 'stderr,csvlog,jsonlog'" \
    -c "ALTER SYSTEM SET log_directory = '$CLUSTER_DIR/collected'" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -w restart -l "$LOG" >/dev/null
out=$(session json alice-json@example.test)
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -w restart -l "$LOG" >/dev/null
for kind in csv json; do
    files=("$CLUSTER_DIR"/collected/*."$kind")
    check "$kind log written" yes "$([ -s "${files[0]}" ] && echo yes || echo no)"
    n=0
    for s in "$(cut -d. -f2 "$CLUSTER_DIR/jwt-json")" "$(cat "$CLUSTER_DIR/key-json")" second-secret-json alice-json@example.test; do
        n=$((n + $(cat "${files[@]}" | grep -cF -- "$s" || true)))
    done
    check "$kind log: no token, key, password or personal value" 0 "$n"
    check "$kind log: the markers" yes "$(cat "${files[@]}" | grep -q 'redacted: personal data' && echo yes || echo no)"
done
ops_summary log_redaction
