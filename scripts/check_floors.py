#!/usr/bin/env python3
"""warden's architecture check: every module of src/ is on a floor, and uses only its own floor and
the floors below (README, "Layout"). A capability never names another capability: what one needs
of another goes through an interface on a lower floor (catalog::registry). Within a floor, the
modules form no circle.

Reads the `crate::<module>` paths of each module (a folder is one module; test code, after the
first #[cfg(test)], and comments are left out; lib.rs, which wires the floors together at
_PG_init, and pg_tests.rs are exempt). Prints what it finds; exits 1 on any violation, and when a
module is on no floor (add it to FLOORS below).

Usage: python3 scripts/check_floors.py [src]   (the test command and the pre-commit hook run it)
"""
import pathlib
import re
import sys

# floor number, name, what it holds; modules per floor
FLOORS = [
    ("ground", "errors, types, settings, warden's own catalog", ["errors", "types", "gucs", "catalog", "planner"]),
    ("authentication", "tokens, scopes, the verified context", ["jwt", "scope", "context"]),
    ("event path", "the audit trail", ["audit"]),
    ("capabilities", "what warden offers; never each other", ["protect", "hold", "privacy", "keys", "crypto", "classify", "providers"]),
    ("entry points", "PostgreSQL's hooks, dispatching down", ["postgres"]),
]
CAPABILITIES = 3
EXEMPT = {"lib", "pg_tests", "fuzz"}  # fuzz.rs: test code only (#[cfg(test)] in lib.rs)

floor_of = {m: i for i, (_, _, mods) in enumerate(FLOORS) for m in mods}
src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
edges = {}
problems = []
for path in sorted(src.rglob("*.rs")):
    mod = path.relative_to(src).parts[0].removesuffix(".rs")
    if mod in EXEMPT:
        continue
    if mod not in floor_of:
        problems.append(f"{path}: module `{mod}` is on no floor (add it to FLOORS in scripts/check_floors.py)")
        continue
    text = path.read_text()
    cut = re.search(r"#\[cfg\((any\()?test", text)
    if cut:
        text = text[: cut.start()]
    text = re.sub(r"//[^\n]*", "", text)
    refs = []
    for m in re.finditer(r"crate::([a-z_][a-z0-9_]*)", text):
        refs.append((m.group(1), text.count("\n", 0, m.start()) + 1))
    for g in re.finditer(r"crate::\{([^}]*)\}", text):
        for r in re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", g.group(1)):
            refs.append((r, text.count("\n", 0, g.start()) + 1))
    for target, line in refs:
        if target == mod or target in EXEMPT:
            continue
        if target not in floor_of:
            problems.append(f"{path}:{line}: `crate::{target}` is on no floor")
            continue
        edges.setdefault(mod, set()).add(target)
        a, b = floor_of[mod], floor_of[target]
        if b > a:
            problems.append(
                f"{path}:{line}: {mod} ({FLOORS[a][0]}) names {target} ({FLOORS[b][0]}), a higher floor: "
                f"let {target} register what {mod} needs (catalog::registry, or a sink {mod} defines)"
            )
        elif a == b == CAPABILITIES:
            problems.append(
                f"{path}:{line}: capability {mod} names capability {target}: go through an interface on a "
                f"lower floor (catalog::registry), which {target} provides at _PG_init"
            )

# circles within a floor
def cycle_from(start):
    stack, seen = [(start, [start])], set()
    while stack:
        v, path = stack.pop()
        for w in sorted(edges.get(v, ())):
            if w == start:
                return path + [start]
            if w not in seen:
                seen.add(w)
                stack.append((w, path + [w]))
    return None

reported = set()
for m in sorted(edges):
    c = cycle_from(m)
    if c and frozenset(c) not in reported:
        reported.add(frozenset(c))
        problems.append("circle: " + " -> ".join(c))

for i, (name, what, mods) in enumerate(FLOORS):
    print(f"floor {i + 1}, {name} ({what}): {', '.join(mods)}")
n = sum(len(v) for v in edges.values())
if problems:
    print("\n".join(problems))
    print(f"{len(problems)} violation(s) of the floors")
    sys.exit(1)
print(f"floors respected: {len(floor_of)} modules, {n} dependencies, no upward arrow, no capability naming another, no circle")
