#!/usr/bin/env bash
# warden.metrics through Debian's prometheus-postgres-exporter, for real: the exporter runs against
# a test cluster with contrib/postgres_exporter/queries.yaml as a role in pg_monitor, /metrics is
# fetched on loopback, and the warden series are there with the values the database holds.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
port=${WARDEN_METRICS_PORT:-54349}
EXPORTER=/usr/bin/prometheus-postgres-exporter

cluster_start metrics "$port"
trap '[ -n "${exp_pid:-}" ] && kill "$exp_pid" 2>/dev/null; cluster_stop metrics' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
CREATE DATABASE mon;
\\c mon
CREATE EXTENSION warden;
CREATE ROLE mon_exporter LOGIN IN ROLE pg_monitor;
CREATE TABLE docs (id int PRIMARY KEY, tenant_id uuid NOT NULL);
SELECT warden.protect_table('docs');
CREATE TABLE loose (id int PRIMARY KEY, tenant_id uuid NOT NULL);   -- a lint finding, and 50% coverage
SELECT warden.log_event('metrics_test', 'test', '1');
SQL
q mon postgres "SELECT warden.authenticate('not.a.token')" >/dev/null || true
q mon postgres "SELECT warden.seal_audit()" >/dev/null
check "the view, as the monitoring role" "t" "$(q mon mon_exporter "SELECT count(*) > 10 FROM warden.metrics")"
check "...not for the application" "ERROR 42501" "$(q mon "$(q mon postgres "CREATE ROLE mon_app LOGIN" >/dev/null; echo mon_app)" "SELECT * FROM warden.metrics")"

web=$(free_port "${WARDEN_EXPORTER_PORT:-19187}")
as_pg env DATA_SOURCE_NAME="host=$PGHOST port=$PGPORT dbname=mon user=mon_exporter sslmode=disable" \
    "$EXPORTER" --extend.query-path="$ROOT/contrib/postgres_exporter/queries.yaml" \
    --web.listen-address="127.0.0.1:$web" --disable-settings-metrics >"$CLUSTER_DIR/exporter.log" 2>&1 &
exp_pid=$!
metrics=""
for _ in $(seq 100); do
    metrics=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$web/metrics', timeout=5).read().decode())" 2>/dev/null || true)
    grep -q '^warden_rls_coverage_percent' <<<"$metrics" && break
    sleep 0.2
done
series() { grep -E "^$1(\{| )" <<<"$metrics" | head -1; }
for s in warden_audit_pending_events warden_audit_sealing_lag_seconds warden_audit_queue_overflowed_total \
         warden_audit_unconfirmed_total warden_audit_unrecorded_total warden_audit_sealing_failures_total \
         warden_rls_coverage_percent warden_denied_authentications_last_hour warden_hold_violations_last_hour \
         warden_phi_reads_last_hour warden_audit_events_last_hour_count warden_lint_findings_count; do
    check "the exporter serves $s" yes "$([ -n "$(series "$s")" ] && echo yes || echo no)"
done
# the value of an unlabelled series (the exporter may add its own labels, such as server)
value() { grep -E "^$1(\{[^}]*\})? " <<<"$metrics" | head -1 | awk '{print $2}'; }
check "coverage: one of two tenant tables protected" 50 "$(value warden_rls_coverage_percent | cut -d. -f1)"
check "the denied authentication is counted" 1 "$(value warden_denied_authentications_last_hour | cut -de -f1)"
check "the logged event, by action and status" 1 \
    "$(grep -E '^warden_audit_events_last_hour_count\{.*action="metrics_test".*status="success".*\}' <<<"$metrics" | awk '{print $2}' | cut -de -f1)"
check "lint findings by severity (the unprotected table is high)" yes \
    "$(grep -E '^warden_lint_findings_count\{.*severity="high".*\} [1-9]' <<<"$metrics" >/dev/null && echo yes || echo no)"

# the compliance report over committed events, as an auditor (a login role in warden_auditor)
q mon postgres "CREATE ROLE mon_auditor LOGIN IN ROLE warden_auditor" >/dev/null
report() { q mon mon_auditor "SELECT warden.compliance_report($1) $2"; }
check "compliance report: the period's denied authentication" 1 "$(report "" "#>> '{summary,denied_authentications_in_period}'")"
check "...and the logged event among the period's events" t "$(report "" "#>> '{summary,events_in_period}'" | awk '{print ($1 >= 2) ? "t" : "f"}')"
check "...none in the 30 days before" 0 "$(report "now() - interval '60 days', now() - interval '30 days'" "#>> '{summary,events_in_period}'")"
check "...the unprotected table is CC6.1's gap, in its evidence" 'gap|[{"issue": "row level security is disabled: every role with table privileges sees every row", "table": "public.loose"}]' \
    "$(q mon mon_auditor "SELECT c ->> 'status', c #> '{evidence,unprotected}' FROM jsonb_array_elements(warden.compliance_report() -> 'controls') c WHERE c ->> 'control' = 'CC6.1'")"
check "...and in the Markdown document" '| SOC 2 | CC6.1 | Logical access security: tenant isolation enforced by the database | **gap** |' \
    "$(q mon mon_auditor "SELECT line FROM regexp_split_to_table(warden.compliance_report_markdown(), E'\n') line WHERE line LIKE '| SOC 2 | CC6.1 |%'")"
check "...not for the application" "ERROR 42501" "$(q mon mon_app "SELECT warden.compliance_report()")"
[ "$OPS_FAILED" -eq 0 ] || { echo "    exporter log:"; tail -20 "$CLUSTER_DIR/exporter.log" | sed 's/^/    /'; }
ops_summary metrics
