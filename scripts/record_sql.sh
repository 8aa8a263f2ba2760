#!/usr/bin/env bash
# Records the install script of the current version in sql/released/warden--<version>.sql, from a
# fresh debug package build. Run it when the version in Cargo.toml is bumped (and again if the SQL of
# that unreleased version changes before it lands). The upgrade test (tests/ops/upgrade.sh) fails when
# the recorded script and the code disagree, and installs every recorded script so that older versions
# can be created and upgraded from.
source "$(dirname "$0")/lib.sh"
v=$(warden_version)
tree=$ROOT/target/debug/warden-pg15
timed "building warden (debug) to generate its SQL" \
    bash -c "cd '$ROOT' && cargo pgrx package --pg-config '$PG_CONFIG' --debug --out-dir '$tree'"
mkdir -p "$ROOT/sql/released"
cp "$tree$($PG_CONFIG --sharedir)/extension/warden--$v.sql" "$ROOT/sql/released/warden--$v.sql"
say "recorded sql/released/warden--$v.sql"
