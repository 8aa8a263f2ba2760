#!/usr/bin/env bash
# How long warden.security_lint(), warden.compliance_report(), compliance_report_markdown() and
# warden.metrics take on a database with many tables: POSTURE_TABLES tables (default 10,000), one
# in five protected, the others unprotected with a tenant column (a finding each), on a release
# build. Each call is timed POSTURE_ROUNDS times (default 5) after one warm-up; min and max in ms.
# Usage: bash benches/posture.sh
source "$(dirname "$0")/../scripts/lib.sh"
TABLES=${POSTURE_TABLES:-10000}
ROUNDS=${POSTURE_ROUNDS:-5}
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start bench_posture "${WARDEN_POSTURE_BENCH_PORT:-54351}"
trap 'cluster_stop bench_posture' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE posture"
psql -X -q -v ON_ERROR_STOP=1 -d posture -c "CREATE EXTENSION warden"
say "creating $TABLES tables"
for ((b = 0; b < TABLES; b += 1000)); do
    psql -X -q -v ON_ERROR_STOP=1 -d posture -c "DO \$\$ BEGIN FOR i IN $((b + 1))..$((b + 1000 < TABLES ? b + 1000 : TABLES)) LOOP
        EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text)', i);
        IF i % 5 = 0 THEN PERFORM warden.protect_table(format('t%s', i)); END IF; END LOOP; END \$\$"
done
psql -X -q -d posture -c "VACUUM ANALYZE"
findings=$(psql -X -A -t -d posture -c "SELECT count(*) FROM warden.security_lint()")
say "$TABLES tables, $findings findings"
time_ms() {  # time_ms SQL: min and max of ROUNDS calls, in ms
    psql -X -A -t -d posture -c "$1" >/dev/null
    for ((r = 0; r < ROUNDS; r++)); do
        psql -X -A -t -d posture -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
    done | sort -n | awk 'NR == 1 { min = $1 } { max = $1 } END { printf "%.0f-%.0f ms", min, max }'
}
printf '%-40s %s\n' "call" "time (min-max of $ROUNDS)"
printf '%-40s %s\n' "warden.security_lint()" "$(time_ms 'SELECT count(*) FROM warden.security_lint()')"
printf '%-40s %s\n' "warden.compliance_report()" "$(time_ms 'SELECT length(warden.compliance_report()::text)')"
printf '%-40s %s\n' "warden.compliance_report_markdown()" "$(time_ms 'SELECT length(warden.compliance_report_markdown())')"
printf '%-40s %s\n' "SELECT * FROM warden.metrics" "$(time_ms 'SELECT count(*) FROM warden.metrics')"
