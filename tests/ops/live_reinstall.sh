#!/usr/bin/env bash
# Reinstalling warden under a running server: a cluster with warden preloaded and two sessions open
# (one idle, one inside a transaction with a context), then the library replaced by a different build
# with install_file, the function scripts/install.sh and every script of this project install with.
# The open sessions and new ones keep working, the postmaster never restarts (same pid, same start
# time) and its log shows no crash.
#
# Usage: live_reinstall.sh OTHER_BUILD.so   (scripts/test.sh passes the #[pg_test] build it saved)
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
other=$1
port=${WARDEN_LIVE_PORT:-54333}
lib=$($PG_CONFIG --pkglibdir)/warden.so
[ -f "$other" ] || { echo "no other build at $other"; exit 1; }
saved=$WARDEN_RUN/warden-current.so
cp "$lib" "$saved"
check "the other build differs from the installed one" "differ" "$(cmp -s "$other" "$lib" && echo same || echo differ)"

cluster_start live "$port"
psql -X -q -d postgres -c "CREATE DATABASE ops_live"
psql -X -q -d ops_live -c "CREATE EXTENSION warden"
load_fixture ops_live
pm_pid=$(head -1 "$CLUSTER_DIR/data/postmaster.pid")
pm_start=$(q ops_live postgres "SELECT pg_postmaster_start_time()")

live_open idle -d ops_live -U ops_app
live_open busy -d ops_live -U ops_app
check "idle session: no context" "" "$(live_run idle "SELECT warden.current_tenant();")"
live_run busy "BEGIN; SELECT warden.authenticate('$(mint $ACME read)');" >/dev/null
check "busy session: acme's rows inside its transaction" "3" "$(live_run busy "SELECT count(*) FROM docs;")"

inode_before=$(stat -c %i "$lib")
install_file "$other" "$lib"                     # the reinstall, as install.sh does it
check "the library file was replaced (new inode)" "changed" "$( [ "$(stat -c %i "$lib")" != "$inode_before" ] && echo changed || echo same)"
check "the new file is the other build" "same" "$(cmp -s "$other" "$lib" && echo same || echo differ)"

check "busy session: its transaction goes on, same context" "3|$ACME" \
    "$(live_run busy "SELECT count(*) FROM docs; SELECT warden.current_tenant();" | paste -sd'|')"
live_run busy "COMMIT;" >/dev/null
check "busy session: a new transaction authenticates" "2" \
    "$(live_run busy "BEGIN; SELECT warden.authenticate('$(mint $GLOBEX read)') \\g /dev/null
SELECT count(*) FROM docs; COMMIT;")"
check "idle session: authenticates and reads" "3" \
    "$(live_run idle "BEGIN; SELECT warden.authenticate('$(mint $ACME read)') \\g /dev/null
SELECT count(*) FROM docs; COMMIT;")"
for i in 1 2 3 4 5; do
    out=$(qf ops_live ops_app -v t="$(mint $GLOBEX read)" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'t') \g /dev/null
SELECT count(*) FROM docs;
COMMIT;
SQL
)
    check "new connection $i: authenticates and reads" "2" "$out"
done
attack_run "after the reinstall" ops_live
live_close idle
live_close busy
check "the postmaster did not restart (pid)" "$pm_pid" "$(head -1 "$CLUSTER_DIR/data/postmaster.pid")"
check "the postmaster did not restart (start time)" "$pm_start" "$(q ops_live postgres "SELECT pg_postmaster_start_time()")"
check "the log shows no crash" "" "$(grep -E 'terminated by signal|was terminated|PANIC|unrecognized function API' "$CLUSTER_DIR/server.log" || true)"
cluster_stop live
# put the build under test back, the same way
install_file "$saved" "$lib"
rm -f "$saved"
ops_summary live_reinstall
