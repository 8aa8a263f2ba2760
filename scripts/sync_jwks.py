#!/usr/bin/env python3
"""Copies an identity provider's signing keys (its JWKS) into warden: the database never fetches a URL.

Reads the issuer's OpenID configuration (ISSUER/.well-known/openid-configuration) for its jwks_uri,
or, when it has none, ISSUER/.well-known/jwks.json (or the URL given with --jwks-url), and calls
warden.register_issuer(issuer, jwks, options) through psql, keeping the options the issuer is
registered with (--options replaces them; a first registration without --options gets '{}').
Nothing is registered when the key ids are the ones already registered (--always registers anyway:
a provider that changes a key's material under the same kid). Standard library only.

Run it from cron or a systemd timer more often than the provider rotates (providers publish the next
key days before they sign with it; hourly is plenty):

    15 * * * *  postgres  /opt/warden/scripts/sync_jwks.py https://clerk.example.com -d app

usage: sync_jwks.py ISSUER [--jwks-url URL] [--options JSON] [--always] [--timeout S] [-d DB]
                          [--psql PSQL] [-- extra psql arguments]
The connection is psql's: -d DB (a name or a conninfo string) and the PG* environment variables.
The role must be a superuser or a member of warden_admin. Exit status: 0 registered or unchanged,
1 the provider could not be read or its JWKS is not usable, 2 the database refused.
"""
import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request


def fetch_json(url: str, timeout: float):
    req = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "warden-sync-jwks"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        if r.status != 200:
            raise OSError(f"{url}: HTTP {r.status}")
        return json.loads(r.read().decode("utf-8"))


def jwks_url(issuer: str, timeout: float) -> str:
    base = issuer.rstrip("/")
    try:
        conf = fetch_json(base + "/.well-known/openid-configuration", timeout)
        uri = conf.get("jwks_uri") if isinstance(conf, dict) else None
        if isinstance(uri, str) and uri:
            return uri
    except (urllib.error.HTTPError, ValueError):
        pass  # no discovery document (or not JSON): the conventional location
    return base + "/.well-known/jwks.json"


def psql(args, sql: str, variables: dict) -> subprocess.CompletedProcess:
    cmd = [args.psql, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"]
    if args.dbname:
        cmd += ["-d", args.dbname]
    for k, v in variables.items():
        cmd += ["-v", f"{k}={v}"]
    cmd += args.extra
    return subprocess.run(cmd, input=sql, capture_output=True, text=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("issuer", help="the tokens' iss, exactly as they carry it")
    p.add_argument("--jwks-url", help="read the JWKS here instead of discovering it")
    p.add_argument("--options", help="register_issuer options (JSON); default: keep the registered ones")
    p.add_argument("--always", action="store_true", help="register even when the key ids are unchanged")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("-d", "--dbname")
    p.add_argument("--psql", default="psql")
    p.add_argument("extra", nargs="*", help="further psql arguments (after --)")
    args = p.parse_args()
    if args.options is not None:
        try:
            if not isinstance(json.loads(args.options), dict):
                raise ValueError
        except ValueError:
            print("sync_jwks: --options must be a JSON object", file=sys.stderr)
            return 1
    url = args.jwks_url or jwks_url(args.issuer, args.timeout)
    try:
        jwks = fetch_json(url, args.timeout)
    except (OSError, ValueError) as e:
        print(f"sync_jwks: could not read the JWKS of {args.issuer} at {url}: {e}", file=sys.stderr)
        return 1
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        print(f"sync_jwks: {url} has no keys: nothing registered (the registered keys stay)", file=sys.stderr)
        return 1
    kids = sorted(k.get("kid") for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str))
    variables = {
        "issuer": args.issuer,
        "jwks": json.dumps(jwks, separators=(",", ":")),
        "options": args.options if args.options is not None else "",
        "kids": json.dumps(kids),
        "always": "on" if args.always or args.options is not None else "off",
    }
    # one statement: registered only when the keys changed (or always), with the kept options
    sql = """
SELECT CASE WHEN r.issuer IS NULL OR :'always'::boolean
                 OR r.key_ids IS DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(:'kids'::jsonb) ORDER BY 1)
            THEN (SELECT 'registered' FROM warden.register_issuer(
                      :'issuer', :'jwks'::jsonb,
                      coalesce(nullif(:'options', '')::jsonb, r.options, '{}')))
            ELSE 'unchanged' END
  FROM (SELECT) AS one
  LEFT JOIN warden.issuers r ON r.issuer = :'issuer';
"""
    r = psql(args, sql, variables)
    if r.returncode != 0:
        print(f"sync_jwks: the database refused the JWKS of {args.issuer}:\n{r.stderr.strip()}", file=sys.stderr)
        return 2
    verdict = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "?"
    print(f"sync_jwks: {args.issuer}: {verdict} ({len(keys)} keys: {', '.join(kids) or 'no kid'}) from {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
