-- warden encryption at rest: the keyring of tenants' data keys and the tenant secrets.
-- Data keys are stored only wrapped (AES-256-GCM) under the master key, which never enters the
-- database: it is read from the file named by warden.master_key_file. A dump of the database
-- alone decrypts nothing. Both tables are closed to every role; warden's functions use them as
-- their owner after checking the caller's context.
CREATE TABLE warden.keyring (
    id           uuid NOT NULL,
    version      integer NOT NULL CHECK (version OPERATOR(pg_catalog.>) 0),
    tenant       text NOT NULL,
    name         text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by   text,
    destroyed_at timestamptz,
    destroyed_by text,
    PRIMARY KEY (id, version),
    UNIQUE (tenant, name, version),
    CHECK ((wrapped IS NULL) OPERATOR(pg_catalog.=) (destroyed_at IS NOT NULL))
);
COMMENT ON TABLE warden.keyring IS 'Data keys per tenant and name, each version wrapped by the master key (warden.master_key_file); a destroyed key (crypto-shredding) keeps its row without key material.';
REVOKE ALL ON warden.keyring FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('warden.keyring', '');

-- What a tenant may know about its keys: names, versions, dates. Never key material.
CREATE VIEW warden.keys WITH (security_barrier) AS
SELECT k.id, k.tenant, k.name, k.version, k.created_at, k.created_by,
       k.destroyed_at IS NOT NULL AS destroyed, k.destroyed_at, k.destroyed_by,
       k.version OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(l.version) FROM warden.keyring l
                                         WHERE l.id OPERATOR(pg_catalog.=) k.id) AS current
  FROM warden.keyring k
 WHERE k.tenant OPERATOR(pg_catalog.=) warden.current_tenant_id()
    OR pg_catalog.pg_has_role('warden_admin', 'MEMBER')
    OR pg_catalog.pg_has_role('warden_auditor', 'MEMBER');
COMMENT ON VIEW warden.keys IS 'The current tenant''s encryption keys and their versions (never key material).';
GRANT SELECT ON warden.keys TO PUBLIC;

-- Tenant secrets (organization credentials), encrypted under the tenant's key "warden:secrets"
-- with the tenant and name as associated data. Row level security keeps each tenant to its own
-- rows even for a role given the table; warden.get_secret() records every read.
CREATE TABLE warden.secrets (
    tenant     text NOT NULL,
    name       text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    ciphertext bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by text,
    PRIMARY KEY (tenant, name)
);
COMMENT ON TABLE warden.secrets IS 'Tenant secrets, encrypted; written by warden.put_secret(), read by warden.get_secret().';
ALTER TABLE warden.secrets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
-- the direct form (no subquery: Citus refuses those on the tables it replicates, warden.citus_setup());
-- the planner support of tenant_with_level_text still evaluates it once per statement
CREATE POLICY secrets_tenant ON warden.secrets
    USING (tenant OPERATOR(pg_catalog.=) warden.tenant_with_level_text('read'))
    WITH CHECK (tenant OPERATOR(pg_catalog.=) warden.tenant_with_level_text('admin'));
REVOKE ALL ON warden.secrets FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('warden.secrets', '');

-- Names (never values) of the current tenant's secrets.
CREATE VIEW warden.secret_names WITH (security_barrier) AS
SELECT s.name, s.updated_at, s.updated_by FROM warden.secrets s
 WHERE s.tenant OPERATOR(pg_catalog.=) warden.tenant_with_level_text('read');
COMMENT ON VIEW warden.secret_names IS 'Names of the current tenant''s secrets (warden.get_secret() reads a value).';
GRANT SELECT ON warden.secret_names TO PUBLIC;
