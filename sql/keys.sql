-- warden API keys: scoped, hashed, revocable. Only the SHA-256 of a key and its display prefix
-- (wdn_<public id>) are stored; the plaintext is returned once by warden.create_api_key().
-- The table is closed to every role: warden's functions read and write it as its owner after
-- authorizing the caller, and warden.api_keys shows a tenant its own keys without their hashes.
CREATE TABLE warden.api_key_records (
    id            uuid PRIMARY KEY,
    public_id     text NOT NULL UNIQUE CHECK (public_id OPERATOR(pg_catalog.~) '^[0-9a-f]{12}$'),
    tenant        text NOT NULL,
    name          text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    level         text NOT NULL CHECK (level OPERATOR(pg_catalog.=) ANY (ARRAY['read', 'write', 'delete', 'admin'])),
    scopes        text[] NOT NULL,
    key_hash      bytea NOT NULL UNIQUE CHECK (pg_catalog.length(key_hash) OPERATOR(pg_catalog.=) 32),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by    text NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    revoked_by    text,
    revoke_reason text,
    last_used_at  timestamptz
);
CREATE INDEX api_key_records_tenant ON warden.api_key_records (tenant);
CREATE INDEX api_key_records_created_by ON warden.api_key_records (created_by);
COMMENT ON TABLE warden.api_key_records IS 'API keys (SHA-256 hashes only), written by warden.create_api_key() and warden.revoke_api_key(); see warden.api_keys.';
REVOKE ALL ON warden.api_key_records FROM PUBLIC;
-- Every change, whoever makes it, drops every backend's cache of keys at commit (revocation is
-- seen by every session's next transaction).
CREATE FUNCTION warden._keys_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_keys_changed';
CREATE TRIGGER warden_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON warden.api_key_records
    FOR EACH STATEMENT EXECUTE FUNCTION warden._keys_changed();
ALTER TABLE warden.api_key_records ENABLE ALWAYS TRIGGER warden_keys_changed;
SELECT pg_catalog.pg_extension_config_dump('warden.api_key_records', '');

-- A tenant's keys, for its contexts (hashes for admin level only); every key for warden_admin
-- and warden_auditor. Nothing here ever holds a plaintext key.
CREATE VIEW warden.api_keys WITH (security_barrier) AS
SELECT k.id, k.tenant, k.name, k.public_id, 'wdn_' OPERATOR(pg_catalog.||) k.public_id AS display_prefix,
       k.level, k.scopes,
       CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
            WHEN k.expires_at IS NOT NULL AND k.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired'
            ELSE 'active' END AS status,
       k.created_at, k.created_by, k.expires_at, k.last_used_at,
       k.revoked_at, k.revoked_by, k.revoke_reason,
       CASE WHEN warden.has_level('admin') OR pg_catalog.pg_has_role('warden_admin', 'MEMBER')
            THEN pg_catalog.encode(k.key_hash, 'hex') END AS key_hash
  FROM warden.api_key_records k
 WHERE k.tenant OPERATOR(pg_catalog.=) warden.current_tenant_id()
    OR pg_catalog.pg_has_role('warden_admin', 'MEMBER')
    OR pg_catalog.pg_has_role('warden_auditor', 'MEMBER');
COMMENT ON VIEW warden.api_keys IS 'API keys of the current tenant (all tenants for warden_admin and warden_auditor): never a plaintext key; the SHA-256 hash for admin level only.';
GRANT SELECT ON warden.api_keys TO PUBLIC;

-- Active keys nobody has used, or nobody has used for warden.key_stale_after (default 90 days):
-- candidates for revocation.
CREATE VIEW warden.stale_api_keys WITH (security_barrier) AS
SELECT k.id, k.tenant, k.name, k.display_prefix, k.level, k.created_at, k.created_by, k.last_used_at,
       CASE WHEN k.last_used_at IS NULL THEN 'never used'
            ELSE 'unused since ' OPERATOR(pg_catalog.||) k.last_used_at::text END AS reason
  FROM warden.api_keys k
 WHERE k.status OPERATOR(pg_catalog.=) 'active'
   AND (k.last_used_at IS NULL
        OR k.last_used_at OPERATOR(pg_catalog.<)
           (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => warden._key_stale_after())));
COMMENT ON VIEW warden.stale_api_keys IS 'Active API keys never used, or unused for warden.key_stale_after.';
GRANT SELECT ON warden.stale_api_keys TO PUBLIC;
