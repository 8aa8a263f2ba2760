#!/usr/bin/env bash
# Installs everything warden needs on a fresh Debian machine (run as root). Idempotent.
set -euo pipefail
PGRX_VERSION=0.18.1
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need_pkgs=()
for p in postgresql-15 postgresql-server-dev-15 libclang-dev clang pkg-config sudo pgbouncer postgresql-15-pgaudit openssl prometheus-postgres-exporter; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
else
  log "Debian packages already installed"
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  log "installing cargo-pgrx $PGRX_VERSION (takes a few minutes once)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
else
  log "cargo-pgrx $PGRX_VERSION already installed"
fi

if ! grep -q "pg15" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
  log "cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi

# the identity-provider tests mint RS256, ES256 and EdDSA tokens with PyJWT and cryptography
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  log "installing PyJWT and cryptography (pip)"
  python3 -m pip install -q --disable-pip-version-check pyjwt cryptography 2>&1 | grep -v 'Running pip as the' || true
  python3 -c 'import jwt, cryptography' || { log "PyJWT and cryptography could not be installed"; exit 1; }
fi

# pgrx installs into the Debian PostgreSQL tree; the test and demo clusters run as postgres.
id postgres >/dev/null 2>&1 || { log "no postgres user"; exit 1; }
log "setup complete"
