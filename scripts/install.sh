#!/usr/bin/env bash
# Builds warden and installs it into an existing PostgreSQL 15, safely while servers are running.
#
# Usage: bash scripts/install.sh [--pg-config PATH] [--debug]
#
# Why not `cargo pgrx install`: a server with warden in shared_preload_libraries has warden.so mapped
# in the postmaster and every backend. Writing the new library into that file in place (as `cp` does)
# changes the code under running processes: they crash, and the postmaster with them. This script
# installs each file under a temporary name and renames it over the old one, which is atomic and
# leaves the old library intact for the processes that still use it. Running servers keep the old
# code until they restart; new connections too (they inherit the postmaster's copy).
#
# It also installs the install scripts of earlier releases (sql/released/) next to the upgrade
# scripts, so that both `CREATE EXTENSION warden` and `ALTER EXTENSION warden UPDATE` work.
set -euo pipefail
PROFILE=--release
while [ $# -gt 0 ]; do
    case $1 in
        --pg-config) export PG_CONFIG=$2; shift 2 ;;
        --debug) PROFILE=; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
source "$(dirname "$0")/lib.sh"

version=$($PG_CONFIG --version)
case $version in
    "PostgreSQL 15"*) ;;
    *) say "warden needs PostgreSQL 15; $PG_CONFIG reports: $version"; exit 1 ;;
esac
if ! cargo pgrx --version 2>/dev/null | grep -q 0.18.1; then
    timed "installing cargo-pgrx 0.18.1 (once, a few minutes)" cargo install cargo-pgrx --version 0.18.1 --locked
fi
if ! grep -q "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi
install_extension $PROFILE
cat <<MSG

Next steps (see README, "Installing into an existing PostgreSQL 15"):
  postgresql.conf:  shared_preload_libraries = 'warden'   and   warden.jwt_secret = '<32+ random bytes>'
  a new install:    restart the server, then in each database: CREATE EXTENSION warden;
  an upgrade:       restart the server when convenient (until then it keeps the library it loaded),
                    then in each database: ALTER EXTENSION warden UPDATE;
MSG
