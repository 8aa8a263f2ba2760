#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine, then shows warden isolating two tenants.
# Usage: bash scripts/demo.sh        (idempotent; leaves the demo cluster running, see the end)
source "$(dirname "$0")/lib.sh"
bash "$ROOT/scripts/setup.sh"
install_extension --release
cluster_start demo "${WARDEN_DEMO_PORT:-54320}"
say "scratch cluster up: psql -h $PGHOST -p $PGPORT -U postgres"
bash "$ROOT/scripts/demo_steps.sh"
say "demo cluster left running; stop it with: sudo -u postgres $PGBIN/pg_ctl -D $CLUSTER_DIR/data stop"
