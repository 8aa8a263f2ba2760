#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, then runs every check and test:
# rustfmt, clippy, the pure Rust and #[pg_test] unit tests (cargo pgrx test), the pg_test/
# regression suite (pg_regress), the integration tests in tests/ (direct and via PgBouncer) and the
# operations tests in tests/ops/ (upgrade, hot standby, dump and restore, reinstall under load,
# a crash of the server during audited writes).
# Prints the counts; exits non-zero on any failure. Usage: bash scripts/test.sh
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/pgbouncer.sh"
cd "$ROOT"
TEST_PORT=${WARDEN_TEST_PORT:-54330}
BOUNCER_PORT=${WARDEN_PGBOUNCER_PORT:-64330}
LOGS=$WARDEN_RUN/logs
declare -A RESULT

bash scripts/setup.sh
mkdir -p "$LOGS"
trap 'pgbouncer_stop; cluster_stop pgreg_plain; cluster_stop pgreg_warden; cluster_stop test; cluster_stop standby; cluster_stop restore; cluster_stop live; cluster_stop audit_crash; cluster_stop no_preload; cluster_stop providers; cluster_stop log_redaction; cluster_stop evidence; cluster_stop metrics; clean_set_aside' EXIT

# cargo_counts LOG: "passed failed" summed over every "test result:" line of a cargo test log.
cargo_counts() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1) } }
         END { printf "%d %d\n", p, f }' "$1"
}

say "cargo fmt --check"
cargo fmt --all --check
RESULT[fmt]=ok

say "architecture: the floors (scripts/check_floors.py)"
python3 scripts/check_floors.py src
RESULT[floors]=ok

say "cargo clippy -D warnings"
cargo clippy --features pg15 --all-targets -- -D warnings
cargo clippy -p warden-tests --all-targets -- -D warnings
RESULT[clippy]=ok

say "unit tests: pure Rust modules and #[pg_test] (cargo pgrx test pg15)"
rm -rf "$WARDEN_RUN/pgrx-data"; mkdir -p "$WARDEN_RUN"; chown postgres:postgres "$WARDEN_RUN"
set_library_aside   # cargo pgrx test installs warden.so itself: never over a file a server maps
set +e
cargo pgrx test pg15 --runas postgres --pgdata "$WARDEN_RUN/pgrx-data" 2>&1 | tee "$LOGS/unit.log" |
    grep --line-buffered -E '^ *(Compiling warden|Finished|Installing)|^test |^test result|panicked|^error'
unit_rc=${PIPESTATUS[0]}
set -e
clean_set_aside
# the #[pg_test] build is a different build of the library: the reinstall test swaps it in under load
mkdir -p "$WARDEN_RUN/builds"
cp "$($PG_CONFIG --pkglibdir)/warden.so" "$WARDEN_RUN/builds/warden-pgtest.so"
read -r up uf < <(cargo_counts "$LOGS/unit.log")
RESULT[unit]="$up passed, $uf failed"
[ "$unit_rc" -eq 0 ] || { say "unit tests failed (log: $LOGS/unit.log)"; exit 1; }

install_extension
cluster_start test "$TEST_PORT"

say "regression suite (pg_regress, pg_test/)"
set +e
bash scripts/regress.sh 2>&1 | tee "$LOGS/regress.log"
reg_rc=${PIPESTATUS[0]}
set -e
reg_total=$(grep -cE '^(test|ok|not ok) ' "$LOGS/regress.log" || true)
reg_failed=$(grep -cE '\.\.\. FAILED|^not ok ' "$LOGS/regress.log" || true)
RESULT[regress]="$((reg_total - reg_failed)) passed, $reg_failed failed"
[ "$reg_rc" -eq 0 ] || { say "regression suite failed"; exit 1; }

say "integration tests (tests/, over TCP as the ordinary role it_app; PgBouncer on :$BOUNCER_PORT)"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE warden_it"
psql -X -q -v ON_ERROR_STOP=1 -d warden_it -f tests/fixture.sql >/dev/null
BOUNCER_PORT=$(free_port "$BOUNCER_PORT")
pgbouncer_start "$BOUNCER_PORT" warden_it
export WARDEN_TEST_HOST=127.0.0.1 WARDEN_TEST_PORT=$PGPORT WARDEN_TEST_DB=warden_it WARDEN_PGBOUNCER_PORT=$BOUNCER_PORT
set +e
cargo test -p warden-tests --no-fail-fast -- --nocapture 2>&1 | tee "$LOGS/integration.log" | grep -E '^test |^test result|pgbouncer:|panicked|^error'
it_rc=${PIPESTATUS[0]}
set -e
read -r ip if < <(cargo_counts "$LOGS/integration.log")
RESULT[integration]="$ip passed, $if failed"

pgbouncer_stop

say "operations tests (tests/ops/: upgrade, hot standby, dump and restore, reinstall under load)"
ops_rc=0
rm -f "$LOGS"/ops-*.log
for t in upgrade standby dump_restore live_reinstall audit_crash no_preload providers log_redaction evidence metrics; do
    args=()
    [ "$t" = live_reinstall ] && args=("$WARDEN_RUN/builds/warden-pgtest.so")
    set +e
    (bash "tests/ops/$t.sh" "${args[@]}") 2>&1 | tee "$LOGS/ops-$t.log" | grep -E '^(not ok|# )'
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 0 ] || { ops_rc=1; say "tests/ops/$t.sh failed (log: $LOGS/ops-$t.log)"; }
done
say "PostgreSQL's own regression suite, with and without warden (tests/ops/pg_regress_suite.sh)"
set +e
bash tests/ops/pg_regress_suite.sh 2>&1 | tee "$LOGS/pg_regress_suite.log" | grep -E '^\S*\[warden\]|^allowed:|^warden-only|^no warden-only|difference'
pgs_rc=${PIPESTATUS[0]}
set -e
pgs_total=$(grep -oE 'warden cluster: [0-9]+ of [0-9]+' "$LOGS/pg_regress_suite.log" | awk '{print $5}' | tail -1)
pgs_allowed=$(grep -c '^allowed:' "$LOGS/pg_regress_suite.log" || true)
if [ "$pgs_rc" -eq 0 ]; then
    RESULT[pgsuite]="${pgs_total:-?} tests, no warden-only failure ($pgs_allowed allowlisted)"
else
    RESULT[pgsuite]="FAILED (log: $LOGS/pg_regress_suite.log)"
fi

op=$(cat "$LOGS"/ops-*.log | grep -c '^ok ' || true)
of=$(cat "$LOGS"/ops-*.log | grep -c '^not ok ' || true)
RESULT[ops]="$op passed, $of failed"

echo
say "summary"
printf '  %-28s %s\n' "rustfmt" "${RESULT[fmt]}" "floors" "${RESULT[floors]}" "clippy -D warnings" "${RESULT[clippy]}" \
    "unit (Rust + #[pg_test])" "${RESULT[unit]}" "regression (pg_regress)" "${RESULT[regress]}" \
    "integration (tests/)" "${RESULT[integration]}" "operations (tests/ops/)" "${RESULT[ops]}" \
    "PostgreSQL's suite" "${RESULT[pgsuite]}"
[ "$it_rc" -eq 0 ] || { say "integration tests failed (log: $LOGS/integration.log)"; exit 1; }
[ "$ops_rc" -eq 0 ] || { say "operations tests failed (logs: $LOGS/ops-*.log)"; exit 1; }
[ "$pgs_rc" -eq 0 ] || { say "PostgreSQL's regression suite differs with warden (log: $LOGS/pg_regress_suite.log)"; exit 1; }
say "all tests passed"
