#!/usr/bin/env python3
"""Mints an HS256 JWT the way an application's auth server would (stdlib only).

usage: mint_jwt.py SECRET TENANT_UUID ACTOR_UUID LEVEL [TTL_SECONDS]
"""
import base64, hashlib, hmac, json, sys, time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret: str, tenant: str, actor: str, level: str, ttl: int = 300) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"tenant_id": tenant, "sub": actor, "role": level, "iat": now, "exp": now + ttl}
    payload = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


if __name__ == "__main__":
    a = sys.argv[1:]
    print(mint(a[0], a[1], a[2], a[3], int(a[4]) if len(a) > 4 else 300))
