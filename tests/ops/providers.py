#!/usr/bin/env python3
"""Identity providers over real connections (run by tests/ops/providers.sh, which starts the cluster
with TLS and PgBouncer and sets PGPORT, BOUNCER_PORT, ROOT).

Tokens are minted by PyJWT with the cryptography package in each provider's shape (Clerk v1 and v2,
PropelAuth with two orgs, Auth0 with a namespaced role and amr, Supabase ES256 with aal, Cognito
without aud, Keycloak realm_access.roles), then the attacks, each with its exact outcome; key
rotation through scripts/sync_jwks.py against a local HTTP server that rotates its keys;
revoke_tokens through PgBouncer; warden.require_tls with a self-signed certificate.
Prints "ok - ..." / "not ok - ..." lines like the other operations tests.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import subprocess
import threading
import time
import uuid

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PORT = os.environ["PGPORT"]
BOUNCER = os.environ.get("BOUNCER_PORT")
ROOT = os.environ["ROOT"]
DB = "providers"
PASSED = FAILED = 0


def check(name, expected, actual):
    global PASSED, FAILED
    if expected == actual:
        PASSED += 1
        print(f"ok - {name}")
    else:
        FAILED += 1
        print(f"not ok - {name}\n    expected: {expected!r}\n    actual:   {actual!r}")


def conninfo(user, ssl="disable", port=None, host="127.0.0.1", db=None):
    return f"host={host} port={port or PORT} dbname={db or DB} user={user} sslmode={ssl}"


ERROR = re.compile(r"^(?:psql:[^:]*:\d+: )?ERROR: +([0-9A-Z]{5})")


def clean(out):
    lines = []
    for line in out.splitlines():
        m = ERROR.match(line)
        if m:
            lines.append("ERROR " + m.group(1))
        elif line.strip() and not line.startswith(("NOTICE", "psql:", "WARNING", "DETAIL", "HINT", "CONTEXT")):
            lines.append(line.strip())
    return "\n".join(lines)


def q(sql, user="it_app", ssl="disable", port=None, host="127.0.0.1", db=None, **variables):
    """Runs sql in one session (stopping at the first error); psql variables are passed safely
    (:'name' in the SQL). Returns the non-empty output lines, errors as "ERROR <sqlstate>"."""
    cmd = ["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=sqlstate",
           "-d", conninfo(user, ssl, port, host, db)]
    for k, v in variables.items():
        cmd += ["-v", f"{k}={v}"]
    r = subprocess.run(cmd, input=sql, capture_output=True, text=True)
    return clean(r.stdout + r.stderr)


def su(sql, **v):
    return q(sql, user="postgres", **v)


class Session:
    """One long-lived psql session (a pooled client keeps its client connection)."""

    def __init__(self, info):
        self.p = subprocess.Popen(["psql", "-X", "-A", "-t", "-q", "-v", "VERBOSITY=sqlstate", "-d", info],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, bufsize=1)
        self.n = 0

    def first(self, sql):
        """The first line of the answer (after an error, the rest of the transaction is 25P02)."""
        return (self.run(sql).splitlines() or [""])[0]

    def run(self, sql):
        self.n += 1
        marker = f"__done_{self.n}_{uuid.uuid4().hex}"
        self.p.stdin.write(sql + f"\n\\echo {marker}\n")
        self.p.stdin.flush()
        out = []
        for line in self.p.stdout:
            if line.strip() == marker:
                break
            out.append(line)
        return clean("".join(out))

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


# --- keys -------------------------------------------------------------------------------------

def rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def jwk(private, kid, alg=None, **extra):
    pub = private.public_key()
    if isinstance(private, rsa.RSAPrivateKey):
        d = RSAAlgorithm.to_jwk(pub, as_dict=True)
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        d = ECAlgorithm.to_jwk(pub, as_dict=True)
    else:
        d = OKPAlgorithm.to_jwk(pub, as_dict=True)
    d["kid"] = kid
    d["use"] = "sig"
    if alg:
        d["alg"] = alg
    d.update(extra)
    return d


def jwks(*keys):
    return json.dumps({"keys": list(keys)})


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def now():
    return int(time.time())


def mint(key, alg, kid, claims, ttl=300, **header):
    c = {"iat": now(), "exp": now() + ttl}
    c.update(claims)
    h = dict(header)
    if kid is not None:
        h["kid"] = kid
    return jwt.encode(c, key, algorithm=alg, headers=h)


CLERK2 = "https://clerk-v2.example.test"
CLERK1 = "https://clerk-v1.example.test"
PROPEL = "https://auth.propel.example.test"
AUTH0 = "https://tenant.auth0.example.test/"
SUPA = "https://abcdefgh.supabase.example.test/auth/v1"
COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST"
KEYCLOAK = "https://kc.example.test/realms/acme"

keys = {name: rsa_key() for name in ["clerk2", "clerk1", "propel", "auth0", "auth0_next", "cognito", "keycloak"]}
keys["supa"] = ec.generate_private_key(ec.SECP256R1())
keys["ed"] = ed25519.Ed25519PrivateKey.generate()
weak = rsa_key(1024)

REGISTRATIONS = [
    (CLERK2, jwks(jwk(keys["clerk2"], "ins_clerk2")),
     {"audience": "my-api", "tenant": "o.id", "level": "o.rol", "levels": {"admin": "admin", "member": "write"}}),
    (CLERK1, jwks(jwk(keys["clerk1"], "ins_clerk1")),
     {"tenant": "org_id", "level": "org_role", "levels": {"org:admin": "admin", "org:member": "write"}}),
    (PROPEL, jwks(jwk(keys["propel"], "propel-1")),
     {"actor": "user_id", "orgs": "org_id_to_org_member_info", "level": "user_role",
      "levels": {"Owner": "admin", "Admin": "admin", "Member": "write"}}),
    (AUTH0, jwks(jwk(keys["auth0"], "auth0-current"), jwk(keys["auth0_next"], "auth0-next")),
     {"audience": "https://api.example.test", "tenant": "org_id", "level": "https://example.test/role",
      "levels": {"admin": "admin", "editor": "write", "viewer": "read"},
      "mfa": {"path": "amr", "any_of": ["mfa"]}, "admin_requires_mfa": True}),
    (SUPA, jwks(jwk(keys["supa"], "supa-ec")),
     {"audience": "authenticated", "tenant": "app_metadata.org_id", "level": "app_metadata.org_role",
      "levels": {"owner": "admin", "member": "write"}, "mfa": {"path": "aal", "any_of": ["aal2"]},
      "admin_requires_mfa": True}),
    (COGNITO, jwks(jwk(keys["cognito"], "cognito-1")),
     {"audience": "app-client-1", "tenant": "custom:tenant_id", "level": "cognito:groups",
      "levels": {"admins": "admin", "editors": "write", "viewers": "read"}}),
    (KEYCLOAK, jwks(jwk(keys["keycloak"], "kc-rs256"), jwk(keys["ed"], "kc-eddsa")),
     {"audience": "account", "tenant": "tenant", "level": "realm_access.roles",
      "levels": {"tenant-admin": "admin", "tenant-editor": "write", "tenant-viewer": "read"}}),
]

TENANTS = {"org_2clerk": 2, "org_clerkv1": 3, "org-a": 4, "org-b": 5, "org_auth0": 6,
           "3f1c2d4e-0000-4000-8000-00000000000a": 7, "acme-co": 8, "kc-tenant": 9}

fixture = ["CREATE TABLE docs (id serial PRIMARY KEY, tenant_id text NOT NULL, body text NOT NULL);"]
for t, n in TENANTS.items():
    fixture.append(f"INSERT INTO docs (tenant_id, body) SELECT '{t}', 'doc ' || g FROM generate_series(1, {n}) g;")
fixture += [
    "SELECT warden.protect_table('docs');",
    "SELECT warden.enable_audit('docs');",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO it_app;",
    "GRANT USAGE ON SEQUENCE docs_id_seq TO it_app;",
]
check("fixture", "", su("\n".join(fixture)))
for iss, keyset, opts in REGISTRATIONS:
    check(f"register {iss}", "", su("SELECT warden.register_issuer(:'iss', :'jwks'::jsonb, :'opts'::jsonb)",
                                     iss=iss, jwks=keyset, opts=json.dumps(opts)))

PROBE = ("SELECT count(*) || ':' || coalesce(warden.current_tenant_id(), '-') || ':' || "
         "coalesce(warden.current_actor_id(), '-') || ':' || coalesce(warden.current_level(), '-') FROM docs")


def auth(token, tenant=None, **kw):
    """authenticate (with a chosen tenant when given) and the probe, in one transaction."""
    call = "SELECT warden.authenticate(:'tok', :'tenant');" if tenant else "SELECT warden.authenticate(:'tok');"
    v = {"tok": token}
    if tenant:
        v["tenant"] = tenant
    return q(f"BEGIN;\n{call}\n{PROBE};\nCOMMIT;", **v, **kw)


def expect(tenant, actor, level):
    return f"{TENANTS[tenant]}:{tenant}:{actor}:{level}"


# --- provider shapes --------------------------------------------------------------------------
clerk2 = {"iss": CLERK2, "sub": "user_2clerk", "azp": "https://app.example.test", "aud": "my-api", "sid": "sess_1",
          "v": 2, "o": {"id": "org_2clerk", "rol": "admin", "slg": "acme"}, "fva": [3, 3]}
check("Clerk v2 (o.id, o.rol admin)", expect("org_2clerk", "user_2clerk", "admin"),
      auth(mint(keys["clerk2"], "RS256", "ins_clerk2", clerk2)))
member = dict(clerk2, o={"id": "org_2clerk", "rol": "member"})
check("Clerk v2 member: write", expect("org_2clerk", "user_2clerk", "write"),
      auth(mint(keys["clerk2"], "RS256", "ins_clerk2", member)))
clerk1 = {"iss": CLERK1, "sub": "user_1clerk", "azp": "https://app.example.test", "org_id": "org_clerkv1",
          "org_role": "org:admin", "org_slug": "acme"}
check("Clerk v1 (org_id, org_role org:admin)", expect("org_clerkv1", "user_1clerk", "admin"),
      auth(mint(keys["clerk1"], "RS256", "ins_clerk1", clerk1)))
propel = {"iss": PROPEL, "sub": "u-propel", "user_id": "u-propel", "email": "x@example.test",
          "org_id_to_org_member_info": {
              "org-a": {"org_id": "org-a", "org_name": "A", "user_role": "Owner", "user_permissions": []},
              "org-b": {"org_id": "org-b", "org_name": "B", "user_role": "Member", "user_permissions": []}}}
ptoken = mint(keys["propel"], "RS256", "propel-1", propel)
check("PropelAuth, org-a chosen: Owner is admin", expect("org-a", "u-propel", "admin"), auth(ptoken, "org-a"))
check("PropelAuth, the same token, org-b chosen: Member is write", expect("org-b", "u-propel", "write"),
      auth(ptoken, "org-b"))
auth0 = {"iss": AUTH0, "sub": "auth0|42", "aud": ["https://api.example.test", AUTH0 + "userinfo"],
         "azp": "client", "org_id": "org_auth0", "https://example.test/role": "admin",
         "permissions": ["read:docs"], "amr": ["mfa"]}
check("Auth0 (namespaced role, aud array, amr mfa): admin", expect("org_auth0", "auth0|42", "admin"),
      auth(mint(keys["auth0"], "RS256", "auth0-current", auth0)))
check("Auth0 token signed with the published next key", expect("org_auth0", "auth0|42", "admin"),
      auth(mint(keys["auth0_next"], "RS256", "auth0-next", auth0)))
supa_sub = "9b2b1c3e-0000-4000-8000-0000000000aa"
supa = {"iss": SUPA, "sub": supa_sub, "aud": "authenticated", "role": "authenticated", "aal": "aal2",
        "amr": [{"method": "totp", "timestamp": now()}], "session_id": "s",
        "app_metadata": {"provider": "email", "org_id": "3f1c2d4e-0000-4000-8000-00000000000a", "org_role": "owner"}}
check("Supabase ES256 (aal2, app_metadata): admin",
      expect("3f1c2d4e-0000-4000-8000-00000000000a", supa_sub, "admin"),
      auth(mint(keys["supa"], "ES256", "supa-ec", supa)))
cognito = {"iss": COGNITO, "sub": "c0g-1", "client_id": "app-client-1", "token_use": "access",
           "scope": "aws.cognito.signin.user.admin", "username": "jo", "custom:tenant_id": "acme-co",
           "cognito:groups": ["viewers", "editors"]}
check("Cognito access token without aud (client_id is the audience): highest group editors is write",
      expect("acme-co", "c0g-1", "write"), auth(mint(keys["cognito"], "RS256", "cognito-1", cognito)))
keycloak = {"iss": KEYCLOAK, "sub": "kc-user", "aud": "account", "azp": "web", "typ": "Bearer",
            "tenant": "kc-tenant", "realm_access": {"roles": ["offline_access", "tenant-viewer", "tenant-admin"]},
            "resource_access": {"account": {"roles": ["view-profile"]}}}
check("Keycloak realm_access.roles: admin", expect("kc-tenant", "kc-user", "admin"),
      auth(mint(keys["keycloak"], "RS256", "kc-rs256", keycloak)))
check("Keycloak EdDSA key", expect("kc-tenant", "kc-user", "admin"),
      auth(mint(keys["ed"], "EdDSA", "kc-eddsa", keycloak)))
check("a token without kid is tried against the issuer's keys of its algorithm", expect("kc-tenant", "kc-user", "admin"),
      auth(mint(keys["keycloak"], "RS256", None, keycloak)))
check("within the leeway (expired 10 s ago, leeway 30 s)", expect("kc-tenant", "kc-user", "admin"),
      auth(mint(keys["keycloak"], "RS256", "kc-rs256", dict(keycloak, iat=now() - 100, exp=now() - 10))))

# --- attacks ----------------------------------------------------------------------------------
R = "ERROR 28000"
pem = keys["clerk2"].public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def hs256(claims, secret, **header):
    h = b64(json.dumps(dict({"alg": "HS256", "typ": "JWT"}, **header)).encode())
    p = b64(json.dumps(dict({"iat": now(), "exp": now() + 300}, **claims)).encode())
    s = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(s)}"


check("algorithm confusion: HS256 signed with the issuer's public key PEM", R,
      auth(hs256(clerk2, pem, kid="ins_clerk2")))
unsigned = f"{b64(json.dumps({'alg': 'none', 'kid': 'ins_clerk2'}).encode())}.{b64(json.dumps(dict(clerk2, exp=now() + 300)).encode())}."
check("alg none", R, auth(unsigned))
check("a header alg that is not the key's (RS512 with an RS256 key)", R,
      auth(mint(keys["clerk2"], "RS512", "ins_clerk2", clerk2)))
check("the kid of another issuer's key (Auth0's, in a Clerk token)", R,
      auth(mint(keys["auth0"], "RS256", "auth0-current", clerk2)))
check("issuer X's key signing a token that claims issuer Y (no kid)", R, auth(mint(keys["auth0"], "RS256", None, clerk2)))
check("issuer X's key with Y's kid", R, auth(mint(keys["auth0"], "RS256", "ins_clerk2", clerk2)))
check("an issuer nobody registered, signed asymmetrically", R,
      auth(mint(keys["clerk2"], "RS256", "ins_clerk2", dict(clerk2, iss="https://evil.example.test"))))
check("wrong aud", R, auth(mint(keys["clerk2"], "RS256", "ins_clerk2", dict(clerk2, aud="other-api"))))
no_aud = {k: v for k, v in clerk2.items() if k != "aud"}
check("missing aud (and no client_id)", R, auth(mint(keys["clerk2"], "RS256", "ins_clerk2", no_aud)))
check("Cognito with another app client's client_id", R,
      auth(mint(keys["cognito"], "RS256", "cognito-1", dict(cognito, client_id="other-client"))))
check("expired beyond the leeway (60 s ago, leeway 30 s)", R,
      auth(mint(keys["clerk2"], "RS256", "ins_clerk2", dict(clerk2, iat=now() - 400, exp=now() - 60))))
check("nbf beyond the leeway (in 120 s)", R,
      auth(mint(keys["clerk2"], "RS256", "ins_clerk2", dict(clerk2, nbf=now() + 120))))
good = mint(keys["clerk2"], "RS256", "ins_clerk2", member)
h, p, s = good.split(".")
tampered = json.loads(base64.urlsafe_b64decode(p + "=="))
tampered["o"] = {"id": "org-a", "rol": "admin"}
check("a tampered payload (another tenant, a higher role)", R,
      auth(f"{h}.{b64(json.dumps(tampered).encode())}.{s}"))
# ES256 with an ASN.1 DER signature (what OpenSSL and most libraries produce before conversion)
sh = b64(json.dumps({"alg": "ES256", "kid": "supa-ec", "typ": "JWT"}).encode())
sp = b64(json.dumps(dict(supa, iat=now(), exp=now() + 300)).encode())
der = keys["supa"].sign(f"{sh}.{sp}".encode(), ec.ECDSA(hashes.SHA256()))
check("an ES256 token with a DER signature", R, auth(f"{sh}.{sp}.{b64(der)}"))
raw = mint(keys["supa"], "ES256", "supa-ec", supa)
check("(the same claims with the raw r||s signature are accepted)",
      expect("3f1c2d4e-0000-4000-8000-00000000000a", supa_sub, "admin"), auth(raw))
check("a provider role with no mapping", R,
      auth(mint(keys["clerk2"], "RS256", "ins_clerk2", dict(clerk2, o={"id": "org_2clerk", "rol": "billing"}))))
check("Keycloak roles none of which map", R,
      auth(mint(keys["keycloak"], "RS256", "kc-rs256", dict(keycloak, realm_access={"roles": ["offline_access"]}))))
check("PropelAuth: an org not in the token", R, auth(ptoken, "org-c"))
check("PropelAuth: no org named", R, auth(ptoken))
check("Clerk: naming a tenant that is not the token's own", R,
      auth(mint(keys["clerk2"], "RS256", "ins_clerk2", clerk2), "org-a"))
check("Auth0 admin without MFA (admin_requires_mfa)", R,
      auth(mint(keys["auth0"], "RS256", "auth0-current", dict(auth0, amr=["pwd"]))))
check("Auth0 editor without MFA is fine", expect("org_auth0", "auth0|42", "write"),
      auth(mint(keys["auth0"], "RS256", "auth0-current", dict(auth0, amr=["pwd"], **{"https://example.test/role": "editor"}))))
check("Supabase owner at aal1 (admin_requires_mfa)", R,
      auth(mint(keys["supa"], "ES256", "supa-ec", dict(supa, aal="aal1"))))
check("SET LOCAL of a forged provider token", R,
      q("BEGIN;\nSET LOCAL warden.context_token = :'tok';\nCOMMIT;", tok=f"{h}.{b64(json.dumps(tampered).encode())}.{s}"))
check("an RSA key of 1024 bits at registration", "ERROR 22023",
      su("SELECT warden.register_issuer('https://weak.example.test', :'jwks'::jsonb)", jwks=jwks(jwk(weak, "weak"))))
check("registration by the application role", "ERROR 42501",
      q("SELECT warden.register_issuer('https://mine.example.test', :'jwks'::jsonb)", jwks=jwks(jwk(keys["clerk2"], "x"))))
check("unregistration by the application role", "ERROR 42501", q(f"SELECT warden.unregister_issuer('{CLERK2}')"))
check("the application role cannot touch the registry's table", "ERROR 42501",
      q("DELETE FROM warden.issuer_records"))
check("the application role cannot lower the leeway setting's guard (warden.jwt_leeway)", "ERROR 42501",
      q("SET warden.jwt_leeway = 300"))

# --- what the context enables -----------------------------------------------------------------
admin = mint(keys["clerk2"], "RS256", "ins_clerk2", clerk2)
def sealed(sql, **v):
    """The first non-empty answer of sql within 10 s (events are sealed by the audit worker)."""
    for _ in range(100):
        out = su(sql, **v)
        if out:
            return out
        time.sleep(0.1)
    return ""


inserted = q("BEGIN;\nSELECT warden.authenticate(:'tok');\n"
             "INSERT INTO docs (tenant_id, body) VALUES ('org_2clerk', 'new');\nCOMMIT;", tok=admin)
check("a provider context writes in its tenant, and the audit trail names its actor and tenant",
      "user_2clerk|org_2clerk|insert",
      inserted + sealed("SELECT actor || '|' || tenant || '|' || action FROM warden.audit_trail "
                        "WHERE action = 'insert' ORDER BY id DESC LIMIT 1"))
TENANTS["org_2clerk"] += 1
check("a provider context cannot write another tenant's row", "ERROR 42501",
      q("BEGIN;\nSELECT warden.authenticate(:'tok');\nINSERT INTO docs (tenant_id, body) VALUES ('org-a', 'x');\nCOMMIT;",
        tok=admin))
key = q("BEGIN;\nSELECT warden.authenticate(:'tok');\n"
        "SELECT warden.create_api_key('ci', 'read', ARRAY['app:docs:read']);\nCOMMIT;", tok=admin)
check("an API key created under a provider context", True, key.startswith("wdn_"))
check("that key's context is the provider tenant's", f"{TENANTS['org_2clerk']}:org_2clerk",
      q("BEGIN;\nSELECT warden.authenticate_key(:'k');\n"
        "SELECT count(*) || ':' || warden.current_tenant_id() FROM docs;\nCOMMIT;", k=key))
old = mint(keys["clerk2"], "RS256", "ins_clerk2",
           dict(member, sub="user_old", iat=now() - 3600, exp=now() + 300))
check("delete_account: a provider token issued an hour ago is outside the re-authentication window", "ERROR 42501",
      q("BEGIN;\nSELECT warden.authenticate(:'tok');\nSELECT warden.delete_account('user_old', 'test');\nCOMMIT;",
        tok=old))
hold = q("BEGIN;\nSELECT warden.authenticate(:'tok');\n"
         "SELECT warden.place_hold('PROV-1', 'provider test', 'org_2clerk') IS NOT NULL;\nCOMMIT;", tok=admin)
hold += "\n" + q("BEGIN;\nSELECT warden.authenticate(:'tok');\nDELETE FROM docs WHERE tenant_id = 'org_2clerk';\nCOMMIT;",
                 tok=admin)
check("a provider admin places a hold in its tenant, which then refuses its DELETE", "t\nERROR 42501", hold)

# --- rotation through scripts/sync_jwks.py, from a provider that rotates its keys ------------
ROT = "http://127.0.0.1:{port}"
rot_keys = {"rot-1": rsa_key(), "rot-2": rsa_key()}
published = {"keys": [jwk(rot_keys["rot-1"], "rot-1")]}


class Provider(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/.well-known/openid-configuration":
            body = {"issuer": ISSUER, "jwks_uri": ISSUER + "/protocol/openid-connect/certs"}
        elif self.path == "/protocol/openid-connect/certs":
            body = published
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
ISSUER = ROT.format(port=server.server_address[1])
threading.Thread(target=server.serve_forever, daemon=True).start()
rot_claims = {"iss": ISSUER, "sub": "rot-user", "tenant": "kc-tenant", "roles": ["editor"]}


def sync(*extra):
    r = subprocess.run(["python3", f"{ROOT}/scripts/sync_jwks.py", ISSUER, "-d", conninfo("postgres"), *extra],
                       capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


rc, out = sync("--options", json.dumps({"tenant": "tenant", "level": "roles", "levels": {"editor": "write"}}))
check("sync_jwks registers a new issuer from its discovery document", (0, True), (rc, "registered" in out))
tok1 = mint(rot_keys["rot-1"], "RS256", "rot-1", rot_claims)
check("a token of the synced key", expect("kc-tenant", "rot-user", "write"), auth(tok1))
rc, out = sync()
check("sync_jwks again, nothing changed: nothing registered", (0, True), (rc, "unchanged" in out))
published = {"keys": [jwk(rot_keys["rot-1"], "rot-1"), jwk(rot_keys["rot-2"], "rot-2")]}
rc, out = sync()
check("the provider publishes its next key: registered, the options kept", (0, True, "write"),
      (rc, "registered" in out,
       su("SELECT options -> 'levels' ->> 'editor' FROM warden.issuers WHERE issuer = :'i'", i=ISSUER)))
tok2 = mint(rot_keys["rot-2"], "RS256", "rot-2", rot_claims)
pooled = Session(conninfo("it_app"))
probe_in = "BEGIN;\nSELECT warden.authenticate('{t}');\n" + PROBE + ";\nCOMMIT;"
check("a long-lived session verifies (and caches) an old-key token", expect("kc-tenant", "rot-user", "write"),
      pooled.run(probe_in.format(t=tok1)))
check("and a next-key token", expect("kc-tenant", "rot-user", "write"), pooled.run(probe_in.format(t=tok2)))
published = {"keys": [jwk(rot_keys["rot-2"], "rot-2")]}
rc, out = sync()
check("the provider retires the old key: registered", (0, True), (rc, "registered" in out))
check("the session that cached the old-key token refuses it from its next transaction", R,
      pooled.first(probe_in.format(t=tok1)))
check("the current key still works in that session", expect("kc-tenant", "rot-user", "write"),
      pooled.run(probe_in.format(t=tok2)))
pooled.close()
published = {"keys": []}
rc, out = sync()
check("a provider answering an empty JWKS: nothing registered, exit 1, the keys stay", (1, "{rot-2}"),
      (rc, su("SELECT key_ids FROM warden.issuers WHERE issuer = :'i'", i=ISSUER)))
server.shutdown()
rc, out = sync()
check("a provider that cannot be reached: exit 1, the keys stay", (1, "{rot-2}"),
      (rc, su("SELECT key_ids FROM warden.issuers WHERE issuer = :'i'", i=ISSUER)))

# --- revoke_tokens through PgBouncer ----------------------------------------------------------
if BOUNCER:
    victim = dict(clerk2, sub="user_stolen_laptop", iat=now() - 5)
    vt = mint(keys["clerk2"], "RS256", "ins_clerk2", victim)
    a = Session(conninfo("it_app", port=BOUNCER))
    b = Session(conninfo("it_app", port=BOUNCER))
    check("through PgBouncer: the token works in two pooled clients",
          [expect("org_2clerk", "user_stolen_laptop", "admin")] * 2,
          [a.run(probe_in.format(t=vt)), b.run(probe_in.format(t=vt))])
    check("revoke_tokens by warden_admin (a superuser)", "", su("SELECT warden.revoke_tokens('user_stolen_laptop')"))
    check("both pooled clients refuse the token from their next transaction", [R, R],
          [a.first(probe_in.format(t=vt)), b.first(probe_in.format(t=vt))])
    time.sleep(1.1)
    fresh = mint(keys["clerk2"], "RS256", "ins_clerk2", dict(victim, iat=now()))
    check("a token issued after the revocation works", expect("org_2clerk", "user_stolen_laptop", "admin"),
          a.run(probe_in.format(t=fresh)))
    a.close()
    b.close()
else:
    check("PgBouncer is running for this test", True, False)

# --- require_tls --------------------------------------------------------------------------------
ping = "BEGIN;\nSELECT warden.authenticate(:'tok');\nSELECT warden.current_tenant_id();\nCOMMIT;"
tok = mint(keys["clerk2"], "RS256", "ins_clerk2", clerk2)
check("require_tls off (the default): a connection without TLS authenticates", "org_2clerk", q(ping, tok=tok))
check("the application role cannot turn it on or off", "ERROR 42501", q("SET warden.require_tls = off"))
lint_tls = "SELECT count(*) FROM warden.security_lint() WHERE rule = 'require_tls_off'"
check("security_lint: TLS configured, require_tls off (fires)", "1", su(lint_tls))
check("ALTER DATABASE ... SET warden.require_tls = on (a superuser)", "",
      su(f"ALTER DATABASE {DB} SET warden.require_tls = on"))
check("sslmode=disable: authenticate refused", R, q(ping, tok=tok))
check("security_lint: require_tls on (quiet)", "0", su(lint_tls))
check("sslmode=require: accepted", "org_2clerk", q(ping, tok=tok, ssl="require"))
check("the connection's TLS version", True,
      q("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", ssl="require") in ("TLSv1.2", "TLSv1.3"))
sock = os.environ["PGHOST"]
check("a Unix socket: refused", R, q(ping, host=sock, tok=tok))
check("SET LOCAL of the carrier without TLS: refused", R,
      q("BEGIN;\nSET LOCAL warden.context_token = :'tok';\nCOMMIT;", tok=tok))
check("set_context without TLS: refused", R,
      q("BEGIN;\nSELECT warden.set_context('org-a', 'mw', 'read');\nCOMMIT;", user="it_middleware"))
check("set_context with TLS", "org-a",
      q("BEGIN;\nSELECT warden.set_context('org-a', 'mw', 'read');\nSELECT warden.current_tenant_id();\nCOMMIT;",
        user="it_middleware", ssl="require"))
check("authenticate_key without TLS: refused", R, q("BEGIN;\nSELECT warden.authenticate_key(:'k');\nCOMMIT;", k=key))
check("authenticate_key with TLS", "org_2clerk",
      q("BEGIN;\nSELECT warden.authenticate_key(:'k');\nSELECT warden.current_tenant_id();\nCOMMIT;", k=key, ssl="require"))
check("a refusal is a failed-authentication event", True,
      int(su("SELECT count(*) FROM warden.audit_trail WHERE action = 'authenticate' AND status = 'denied' "
             "AND changes ->> 'reason' LIKE '%without TLS%'") or 0) >= 5)
check("other databases are not affected", "off",
      q("SELECT current_setting('warden.require_tls')", user="postgres", db="postgres"))
check("ALTER DATABASE ... RESET", "", su(f"ALTER DATABASE {DB} RESET warden.require_tls"))
check("without require_tls again, sslmode=disable authenticates", "org_2clerk", q(ping, tok=tok))

# --- security_lint: a tenant key not rotated within warden.key_rotation_age, and its twin ----------
check("a tenant key is created", "t", su("BEGIN; SELECT warden.set_context('org-a', 'lint-admin', 'admin'); "
                                        "SELECT warden.create_key('lint-key') IS NOT NULL; COMMIT;").splitlines()[-1])
time.sleep(2.2)
rotation = ("SET warden.key_rotation_age = 1; SELECT count(*) FROM warden.security_lint() "
            "WHERE rule = 'key_not_rotated' AND object = 'org-a/lint-key'")
check("security_lint: a key older than warden.key_rotation_age (fires)", "1", su(rotation).splitlines()[-1])
su("BEGIN; SELECT warden.set_context('org-a', 'lint-admin', 'admin'); SELECT warden.rotate_key('lint-key'); COMMIT;")
check("security_lint: the same key once rotated (quiet)", "0", su(rotation).splitlines()[-1])

print(f"# providers: {PASSED} passed, {FAILED} failed")
raise SystemExit(1 if FAILED else 0)
