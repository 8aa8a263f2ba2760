#!/usr/bin/env bash
# Crash test of the audit trail: several clients run audited writes on a cluster of its own (durable
# commits: fsync on); the postmaster is killed with SIGKILL in the middle; after the restart every
# write a client saw committed has its row and its event, and the chain verifies.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
port=${WARDEN_CRASH_PORT:-54334}
CLIENTS=4
out=$WARDEN_RUN/audit_crash
rm -rf "$out" && mkdir -p "$out"

cluster_start audit_crash "$port"
sed -i 's/^fsync = off$/fsync = on/' "$CLUSTER_DIR/data/postgresql.conf"
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE EXTENSION warden;
CREATE TABLE crash_docs (id bigint PRIMARY KEY, client int NOT NULL, body text NOT NULL);
SELECT warden.enable_audit('crash_docs');
SQL

# Each client inserts rows one transaction at a time and writes the id to its file only after the
# server acknowledged the COMMIT (psql prints the id once the statement, in autocommit, committed).
client() {
    local n=$1 i=0
    while :; do
        i=$((i + 1))
        local id=$((n * 1000000 + i))
        psql -X -qtA -d postgres -c "INSERT INTO crash_docs VALUES ($id, $n, 'row $i') RETURNING id" \
            >>"$out/acked-$n" 2>/dev/null || break
    done
}
for n in $(seq $CLIENTS); do client "$n" & done
sleep 3
pid=$(head -1 "$CLUSTER_DIR/data/postmaster.pid")
# the postmaster and every process of the cluster at once, as a power cut would
kill -9 "$pid" $(pgrep -P "$pid") 2>/dev/null || true
wait 2>/dev/null || true
acked=$(cat "$out"/acked-* | grep -c . || true)
check "the clients had commits acknowledged before the crash" "t" "$([ "$acked" -gt 20 ] && echo t || echo "$acked")"
rm -f "$CLUSTER_DIR/data/postmaster.pid" "$CLUSTER_DIR"/sock/.s.PGSQL.*
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w start >/dev/null
check "the server restarted after the crash" "1" "$(q postgres postgres "SELECT 1")"

# after a crash the events committed but not yet sealed are still pending: a first write (or
# warden.seal_audit()) starts the sealer again
q postgres postgres "SELECT warden.log_event('after_crash', 'test', 'restart')" >/dev/null
for _ in $(seq 100); do
    [ "$(q postgres postgres "SELECT count(*) FROM warden.audit_pending")" = 0 ] && break
    sleep 0.1
done
check "the sealer drained what was pending at the crash" "0" "$(q postgres postgres "SELECT count(*) FROM warden.audit_pending")"
cat "$out"/acked-* | grep . | sort -u >"$out/acked.txt"
q postgres postgres "SELECT id FROM crash_docs ORDER BY 1" | sort -u >"$out/rows.txt"
q postgres postgres "SELECT resource_id FROM warden.audit_events WHERE action = 'insert'" | sort -u >"$out/events.txt"
check "every acknowledged write is in the table" "" "$(comm -23 "$out/acked.txt" "$out/rows.txt" | head -5 | paste -sd' ')"
check "every acknowledged write has its event" "" "$(comm -23 "$out/acked.txt" "$out/events.txt" | head -5 | paste -sd' ')"
check "no event without its row (nothing recorded for a write that was lost)" "" "$(comm -13 "$out/rows.txt" "$out/events.txt" | head -5 | paste -sd' ')"
check "the chain verifies after the crash" "t||" "$(q postgres postgres "SELECT intact, first_bad_id, reason FROM warden.verify_audit()")"
echo "# $(wc -l <"$out/acked.txt") writes acknowledged before the crash, $(wc -l <"$out/rows.txt") rows after it"
cluster_stop audit_crash
ops_summary audit_crash
