#!/usr/bin/env bash
# Without shared_preload_libraries: what needs warden in every backend from the start refuses to
# begin (fail closed) instead of half working. Classifying a table PHI (its reads are logged by
# executor hooks) and placing a legal hold (the guards' utility checks) are refused with 55000; a PHI
# table classified while warden was preloaded, on a server restarted without it, refuses reads in
# every backend that has loaded warden.
source "$(dirname "$0")/../../scripts/lib.sh"
source "$ROOT/tests/ops/common.sh"
port=${WARDEN_NO_PRELOAD_PORT:-54335}

cluster_start no_preload "$port"
trap 'cluster_stop no_preload' EXIT
preload() { # preload on|off: restart with or without warden preloaded
    if [ "$1" = on ]; then
        sed -i "s/^#shared_preload_libraries = 'warden'$/shared_preload_libraries = 'warden'/" "$CLUSTER_DIR/data/postgresql.conf"
    else
        sed -i "s/^shared_preload_libraries = 'warden'$/#shared_preload_libraries = 'warden'/" "$CLUSTER_DIR/data/postgresql.conf"
    fi
    as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w restart >/dev/null
}
preload off
check "warden is not preloaded" "" "$(q postgres postgres "SHOW shared_preload_libraries")"
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
CREATE EXTENSION warden;
CREATE TABLE patients (id int PRIMARY KEY, tenant_id uuid NOT NULL, dx text);
INSERT INTO patients SELECT g, '$ACME', 'dx' FROM generate_series(1, 5) g;
SELECT warden.protect_table('patients');
SELECT warden.enable_audit('patients');
SQL
check "classifying PHI is refused without the preload" "ERROR 55000" \
    "$(q postgres postgres "SELECT warden.classify('patients', 'PHI')")"
check "CONFIDENTIAL needs no executor hook" "" "$(q postgres postgres "SELECT warden.classify('patients', 'CONFIDENTIAL')")"
check "a legal hold is refused without the preload" "ERROR 55000" \
    "$(q postgres postgres "SELECT warden.place_hold('NP-1', 'test', '$ACME')")"

preload on
check "with the preload, PHI is accepted" "" "$(q postgres postgres "SELECT warden.classify('patients', 'PHI')")"
preload off
read_phi="SELECT warden.set_context('$ACME', '$ACTOR', 'read'); SELECT count(*) FROM patients"
check "the preload removed later: a backend that has loaded warden refuses PHI reads" "ERROR 55000" \
    "$(q postgres postgres "$read_phi" | tail -1)"
ops_summary no_preload
