#!/usr/bin/env bash
# Runs the pg_test/ regression suite with PostgreSQL's own pg_regress against the cluster in
# PGHOST/PGPORT (scripts/test.sh starts one). `--update` rewrites pg_test/expected from the results.
source "$(dirname "$0")/lib.sh"
out=$WARDEN_RUN/regress
rm -rf "$out" && mkdir -p "$out/sql" "$out/expected"
cp "$ROOT"/pg_test/sql/*.sql "$out/sql/"
cp "$ROOT"/pg_test/expected/*.out "$out/expected/" 2>/dev/null || true
tests=$(cd "$ROOT/pg_test/sql" && ls *.sql | sed 's/\.sql$//' | sort)
set +e
/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress \
    --bindir="$PGBIN" --inputdir="$out" --outputdir="$out" \
    --host="$PGHOST" --port="$PGPORT" --user=postgres \
    --dbname=warden_regress --load-extension=warden $tests
rc=$?
set -e
if [ "${1:-}" = "--update" ]; then
    cp "$out"/results/*.out "$ROOT/pg_test/expected/"
    say "pg_test/expected updated from $out/results"
fi
[ $rc -eq 0 ] || { [ -f "$out/regression.diffs" ] && head -200 "$out/regression.diffs"; }
exit $rc
