#!/usr/bin/env bash
# Property-based fuzzing of warden's parsers (src/fuzz.rs, proptest) for as long as you like.
# Usage: bash scripts/fuzz.sh TARGET SECONDS     one target, e.g. jwt_hs256_signed_then_changed
#        bash scripts/fuzz.sh all SECONDS        every target, one after the other
#        bash scripts/fuzz.sh list               the targets
# Built with the `fuzz` profile (optimized, with overflow checks and debug assertions, so that an
# arithmetic overflow is a failure too). Prints the cases tried per target; on a failure, proptest's
# minimal input (keep it as a regression test next to the code it broke) and exit status 1.
# The test command runs every target for WARDEN_FUZZ_CASES cases (default 1,000) instead.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
targets=$(sed -n 's/^fn \([a-z0-9_]*\)() {$/\1/p' src/fuzz.rs | while read -r f; do
    grep -B1 -x "fn $f() {" src/fuzz.rs | grep -q '#\[test\]' && echo "$f"; done)
case "${1:-}" in
    list|"") echo "$targets"; [ -n "${1:-}" ] || { echo "usage: bash scripts/fuzz.sh TARGET|all SECONDS" >&2; exit 2; }; exit 0 ;;
    all) run=$targets ;;
    *) grep -qx "$1" <<<"$targets" || { echo "no fuzz target $1; bash scripts/fuzz.sh list" >&2; exit 2; }; run=$1 ;;
esac
seconds=${2:?usage: bash scripts/fuzz.sh TARGET|all SECONDS}
cargo test --profile fuzz --features pg15 --lib --no-run 2>&1 | grep -E '^ *(Compiling warden|Finished)|^error' || true
rc=0
log=$(mktemp)
for t in $run; do
    set +e
    WARDEN_FUZZ_SECONDS=$seconds cargo test --profile fuzz --features pg15 --lib "fuzz::$t" -- --exact --nocapture >"$log" 2>&1
    trc=$?
    set -e
    if [ "$trc" -eq 0 ]; then
        grep -E '^fuzz ' "$log"
    else
        rc=1
        sed -n '/panicked/,/^test result/p' "$log" | head -60
        echo "fuzz $t: FAILED"
    fi
done
rm -f "$log"
exit $rc
