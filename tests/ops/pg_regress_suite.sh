#!/usr/bin/env bash
# PostgreSQL's own regression suite (src/test/regress), differentially: run serially
# (parallel_schedule with --max-connections=1, as `make installcheck` does) against a plain cluster
# and against one with warden in shared_preload_libraries and in the test database
# (--load-extension=warden). Fails when a test fails with warden and its output differs from the
# plain run's in a hunk that tests/ops/pg_regress_allowlist.txt does not explain.
#
# The sources are Debian's (apt-get source postgresql-15; a deb-src entry is added when none is
# configured). Debian's archive may carry sources one minor release behind the server (15.18 for
# 15.20): the tests that differ from that gap fail on both clusters alike and are not warden's.
# The tree's own psql runs the tests (the server's newer psql reads the lines after a failed
# COPY ... FROM stdin differently from the older test files).
source "$(dirname "$0")/../../scripts/lib.sh"
port_plain=${WARDEN_PGREG_PLAIN_PORT:-54341}
port_warden=${WARDEN_PGREG_WARDEN_PORT:-54342}
allowlist=$ROOT/tests/ops/pg_regress_allowlist.txt
src_root=$WARDEN_RUN/pgsrc
out=$WARDEN_RUN/pg_regress_suite
start=$SECONDS

# --- the sources ---------------------------------------------------------------------------
if ! ls -d "$src_root"/postgresql-15-*/src/test/regress >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache showsrc postgresql-15 2>/dev/null | grep -q '^Version:'; then
        say "adding a deb-src entry for Debian's archive"
        . /etc/os-release
        cat >/etc/apt/sources.list.d/warden-deb-src.sources <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        apt-get update -qq
    fi
    command -v dpkg-source >/dev/null || apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
    rm -rf "$src_root" && mkdir -p "$src_root"
    # newest first; a version whose files the archive no longer serves is skipped
    got=
    for v in $(apt-cache showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -rV); do
        if (cd "$src_root" && apt-get source -qq "postgresql-15=$v" >/dev/null 2>&1); then got=$v; break; fi
    done
    [ -n "$got" ] || { say "apt-get source postgresql-15 failed for every version the archive lists"; exit 1; }
    say "PostgreSQL sources $got"
    tree=$(ls -d "$src_root"/postgresql-15-*/ | head -1)
    (cd "$tree" && ./configure -q --without-icu --without-readline --without-zlib >"$src_root/configure.log" 2>&1) \
        || { tail -20 "$src_root/configure.log"; exit 1; }
    make -s -j2 -C "$tree/src/test/regress" >"$src_root/make.log" 2>&1 || { tail -20 "$src_root/make.log"; exit 1; }
    make -s -j2 -C "$tree/src/bin/psql" >>"$src_root/make.log" 2>&1 || { tail -20 "$src_root/make.log"; exit 1; }
fi
tree=$(ls -d "$src_root"/postgresql-15-*/ | head -1)
tree=${tree%/}
regress=$tree/src/test/regress
mkdir -p "$out/bin"
ln -sf "$tree/src/bin/psql/psql" "$out/bin/psql"
chown -R postgres:postgres "$src_root"
say "sources ready in $((SECONDS - start)) s ($(basename "$tree"))"

# --- two clusters, the suite on both at once -----------------------------------------------
CLUSTER_PRELOAD= cluster_start pgreg_plain "$port_plain"
plain_host=$PGHOST plain_port=$PGPORT
cluster_start pgreg_warden "$port_warden"
warden_host=$PGHOST warden_port=$PGPORT
trap 'cluster_stop pgreg_plain; cluster_stop pgreg_warden' EXIT

run_suite() { # run_suite NAME HOST PORT [pg_regress options...]
    local name=$1 host=$2 port=$3
    shift 3
    rm -rf "$out/$name" && mkdir -p "$out/$name"
    chown -R postgres:postgres "$out"
    # pg_regress writes its results next to the inputs it is given; each run has its own copy
    (cd "$regress" && as_pg ./pg_regress --inputdir=. --outputdir="$out/$name" --bindir="$out/bin" \
        --dlpath=. --host="$host" --port="$port" --user=postgres \
        --schedule=./parallel_schedule --max-connections=1 --max-concurrent-tests=20 "$@") \
        >"$out/$name.log" 2>&1
}
chown -R postgres:postgres "$regress"
run_suite plain "$plain_host" "$plain_port" &
plain_pid=$!
run_suite warden "$warden_host" "$warden_port" --load-extension=warden &
warden_pid=$!
wait $plain_pid || true
wait $warden_pid || true
say "both runs done in $((SECONDS - start)) s"

failed() { sed -n -E 's/^ *(test +)?([a-z_0-9.]+) +\.\.\. +FAILED.*/\2/p' "$1" | sort -u; }
failed "$out/plain.log" >"$out/plain.failed"
failed "$out/warden.log" >"$out/warden.failed"
total=$(grep -cE '^ *(test +)?[a-z_0-9.]+ +\.\.\. ' "$out/warden.log" || true)
say "plain cluster: $(wc -l <"$out/plain.failed") of $total tests fail: $(tr '\n' ' ' <"$out/plain.failed")"
say "warden cluster: $(wc -l <"$out/warden.failed") of $total tests fail: $(tr '\n' ' ' <"$out/warden.failed")"
[ "$total" -gt 200 ] || { say "the suite did not run (see $out/warden.log)"; tail -20 "$out/warden.log"; exit 1; }

# --- every failure with warden must be the plain run's, or on the allowlist -----------------
python3 - "$out" "$allowlist" <<'PY'
# A hunk of the plain run's output against warden's is explained when, with psql's column padding,
# separator lines and row counts set aside, warden's side only adds lines and every added line
# matches an allowlist pattern of that test (or of "*"). Anything else is a warden-only difference.
import collections, difflib, re, sys
out, allowlist = sys.argv[1], sys.argv[2]
rules = collections.defaultdict(list)
for line in open(allowlist):
    line = line.rstrip('\n')
    if not line.strip() or line.lstrip().startswith('#'):
        continue
    test, pattern, reason = line.split('\t', 2)
    rules[test].append((re.compile(pattern), reason))
def norm(l):
    l = re.sub(r'\s*\|\s*', ' | ', l.strip())
    return re.sub(r'\s+', ' ', l)
def noise(l):
    return re.fullmatch(r'[-+]*', l) is not None or re.fullmatch(r'\(\d+ rows?\)', l) is not None
plain_failed = set(open(f'{out}/plain.failed').read().split())
bad, explained = 0, collections.Counter()
for test in open(f'{out}/warden.failed').read().split():
    def lines(name):
        try:
            return open(f'{out}/{name}/results/{test}.out', errors='replace').read().splitlines()
        except FileNotFoundError:
            return []
    a, b = lines('plain'), lines('warden')
    hunks, cur = [], None
    for d in difflib.unified_diff(a, b, 'plain', 'warden', n=0, lineterm=''):
        if d.startswith('@@'):
            cur = [d]
            hunks.append(cur)
        elif cur is not None and d[:1] in '+-' and not d.startswith(('+++', '---')):
            cur.append(d)
    if not hunks:
        if test not in plain_failed:
            bad += 1
            print(f'{test} fails with warden only, with the same output as without: see {out}/warden/regression.diffs')
        continue
    for h in hunks:
        minus = collections.Counter(norm(l[1:]) for l in h[1:] if l[0] == '-' and not noise(norm(l[1:])))
        plus = collections.Counter(norm(l[1:]) for l in h[1:] if l[0] == '+' and not noise(norm(l[1:])))
        added = plus - minus
        ok = not (minus - plus)
        why = set()
        for l in added.elements():
            r = next((r for p, r in rules[test] + rules['*'] if p.search(l)), None)
            if r is None:
                ok = False
                break
            why.add(r)
        if ok:
            for w in why:
                explained[(test, w)] += 1
        else:
            bad += 1
            print(f'warden-only difference in {test}:')
            print('\n'.join(h[:40]))
for (test, why), n in sorted(explained.items()):
    print(f'allowed: {test}: {n} hunk(s): {why}')
if bad:
    print(f'{bad} warden-only difference(s) not on the allowlist ({allowlist})')
    sys.exit(1)
print('no warden-only difference outside the allowlist')
PY
say "pg_regress_suite done in $((SECONDS - start)) s"
