#!/usr/bin/env python3
"""Verifies a copy of warden's audit trail outside the database.

Input: the rows of `warden.audit_export(after_id, max_rows)`, one JSON document per line (e.g.
`psql -XAtc "SELECT warden.audit_export(0, 1000000)" > trail.jsonl`). Output: whether the copy is
intact, and the head (id and hash) to compare with a digest kept elsewhere
(`warden.audit_digest()`).

    python3 verify_audit_export.py trail.jsonl [--start ID:HASH] [--digest ID:HASH]

--start  the event before the first one in the file (its id and hash), when the file does not
         begin with event 1: a purge checkpoint, or the head of the previous export
--digest a digest anchored earlier: the copy must reach that id with that hash

Standard library only. The canonical serialization it reproduces is documented in README,
"Audit trail", and in src/audit/canonical.rs:

    event = "warden.audit.v2" field*10, field = tag u8, length u32 big-endian, bytes
    fields: id, occurred_at, tenant, actor, action, resource_type, resource_id, changes, status, context
    tags: N null, I integer, T text, U uuid, S timestamp (UTC, microseconds), J canonical JSON
    tenant and actor: T (their identifier's text) in version 2, U in version 1; each exported
    event's "serialization" says which (an export made before 0.6.0 has none: version 1)
    hash = SHA-256(prev_hash || event); the first event's prev_hash is 32 zero bytes
"""
import hashlib
import json
import struct
import sys


class Number(str):
    """A JSON number kept exactly as written (jsonb never writes exponents)."""


def canonical_json(value, out):
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, Number):
        out.append(plain_decimal(value))
    elif isinstance(value, str):
        out.append(quote(value))
    elif isinstance(value, list):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            canonical_json(v, out)
        out.append("]")
    else:  # dict: members sorted by the UTF-8 bytes of their keys
        out.append("{")
        for i, k in enumerate(sorted(value, key=lambda k: k.encode("utf-8"))):
            if i:
                out.append(",")
            out.append(quote(k))
            out.append(":")
            canonical_json(value[k], out)
        out.append("}")


def plain_decimal(text):
    """Plain decimal notation: exponent expanded, sign of zero and leading zeros dropped, the
    digits after the point kept (as src/audit/canonical.rs does)."""
    s, exp = text, 0
    neg = s.startswith("-")
    if neg:
        s = s[1:]
    for e in "eE":
        if e in s:
            s, x = s.split(e)
            exp = int(x)
    intpart, _, frac = s.partition(".")
    digits = intpart + frac
    point = len(intpart) + exp
    if point <= 0:
        intpart, frac = "0", "0" * (-point) + digits
    elif point >= len(digits):
        intpart, frac = digits + "0" * (point - len(digits)), ""
    else:
        intpart, frac = digits[:point], digits[point:]
    intpart = intpart.lstrip("0") or "0"
    zero = intpart == "0" and set(frac) <= {"0"}
    return ("-" if neg and not zero else "") + intpart + ("." + frac if frac else "")


ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def quote(s):
    out = ['"']
    for c in s:
        if c in ESCAPES:
            out.append(ESCAPES[c])
        elif ord(c) < 0x20:
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def field(tag, data):
    return tag + struct.pack(">I", len(data)) + data


def canonical_event(e):
    def opt(tag, v, enc):
        return field(b"N", b"") if v is None else field(tag, enc(v))

    def js(v):
        out = []
        canonical_json(v, out)
        return "".join(out).encode("utf-8")

    utf8 = lambda s: s.encode("utf-8")
    version = int(e.get("serialization") or 1)
    if version not in (1, 2):
        raise ValueError(f"event {e['id']}: unknown serialization {version}")
    ident = b"U" if version == 1 else b"T"
    return b"warden.audit.v%d" % version + b"".join([
        field(b"I", str(int(e["id"])).encode()),
        field(b"S", utf8(e["occurred_at"])),
        opt(ident, e.get("tenant"), utf8),
        opt(ident, e.get("actor"), utf8),
        field(b"T", utf8(e["action"])),
        opt(b"T", e.get("resource_type"), utf8),
        opt(b"T", e.get("resource_id"), utf8),
        opt(b"J", e.get("changes"), js),
        field(b"T", utf8(e["status"])),
        opt(b"J", e.get("context"), js),
    ])


def event_hash(prev, e):
    return hashlib.sha256(prev + canonical_event(e)).digest()


def load(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line, parse_float=Number, parse_int=Number)


def verify(events, start=None):
    """Returns (intact, checked, head_id, head_hash, first_bad, reason)."""
    prev_id, prev_hash = start if start else (0, bytes(32))
    checked = 0
    for e in events:
        eid = int(e["id"])
        if eid != prev_id + 1:
            return False, checked, prev_id, prev_hash, prev_id + 1, f"event {prev_id + 1} is missing"
        if bytes.fromhex(e["prev_hash"]) != prev_hash:
            return False, checked, prev_id, prev_hash, eid, f"event {eid}: prev_hash does not match the previous event's hash"
        try:
            h = event_hash(prev_hash, e)
        except ValueError as err:
            return False, checked, prev_id, prev_hash, eid, str(err)
        if h.hex() != e["hash"]:
            return False, checked, prev_id, prev_hash, eid, f"event {eid}: hash does not match the event's content"
        prev_id, prev_hash = eid, h
        checked += 1
    return True, checked, prev_id, prev_hash, None, None


def parse_anchor(s):
    i, h = s.split(":")
    return int(i), bytes.fromhex(h.removeprefix("\\x"))


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 2
    path, start, digest = argv[0], None, None
    rest = argv[1:]
    while rest:
        opt, val, rest = rest[0], rest[1], rest[2:]
        if opt == "--start":
            start = parse_anchor(val)
        elif opt == "--digest":
            digest = parse_anchor(val)
    events = list(load(path))
    ok, checked, hid, hh, bad, reason = verify(events, start)
    print(f"intact={str(ok).lower()} checked={checked} head={hid}:{hh.hex()}" + (f" first_bad={bad} reason={reason}" if not ok else ""))
    if ok and digest:
        by_id = {int(e["id"]): e["hash"] for e in events}
        holds = by_id.get(digest[0]) == digest[1].hex()
        print(f"digest {digest[0]} holds={str(holds).lower()}")
        ok = holds
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
