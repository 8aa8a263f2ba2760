-- warden 0.4.0 -> 0.5.0: API keys, encryption at rest, data classification (issue 7).
-- protect_table gains (namespace, resource_type); functions generated from Rust; sql/keys.sql,
-- sql/classify.sql and sql/crypto.sql as a fresh install runs them; the changed parts of
-- sql/finalize.sql. tests/ops/upgrade.sh proves the result matches a fresh install.

DROP FUNCTION protect_table(regclass, name, boolean);

-- src/keys/api.rs:655
-- warden::keys::api::_key_stale_after
CREATE  FUNCTION "_key_stale_after"() RETURNS double precision /* f64 */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_key_stale_after_wrapper';

-- src/keys/api.rs:335
-- warden::keys::api::authenticate_key
CREATE  FUNCTION "authenticate_key"(
	"key" TEXT /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'authenticate_key_wrapper';

-- src/classify/api.rs:193
-- warden::classify::api::classify
CREATE  FUNCTION "classify"(
	"target" TEXT, /* Option < & str > */
	"level" TEXT /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'classify_wrapper';

-- src/keys/api.rs:403
-- warden::keys::api::create_api_key
CREATE  FUNCTION "create_api_key"(
	"name" TEXT, /* Option < & str > */
	"level" TEXT, /* Option < & str > */
	"scopes" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"expires_at" timestamp with time zone DEFAULT NULL /* Option < TimestampWithTimeZone > */
) RETURNS TEXT /* Result < String, ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'create_api_key_wrapper';

-- src/crypto/api.rs:378
-- warden::crypto::api::create_key
CREATE  FUNCTION "create_key"(
	"key_name" TEXT /* Option < & str > */
) RETURNS uuid /* Result < pgrx :: Uuid, ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'create_key_wrapper';

-- src/crypto/api.rs:555
-- warden::crypto::api::decrypt
CREATE  FUNCTION "decrypt"(
	"data" bytea, /* Option < & [u8] > */
	"aad" bytea DEFAULT NULL /* Option < & [u8] > */
) RETURNS bytea /* Result < :: std :: option :: Option < Vec < u8 > > , ErrorReport > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'decrypt_wrapper';

-- src/crypto/api.rs:566
-- warden::crypto::api::decrypt_text
CREATE  FUNCTION "decrypt_text"(
	"data" bytea, /* Option < & [u8] > */
	"aad" bytea DEFAULT NULL /* Option < & [u8] > */
) RETURNS TEXT /* Result < Option < String > , ErrorReport > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'decrypt_text_wrapper';

-- src/crypto/api.rs:441
-- warden::crypto::api::destroy_key
CREATE  FUNCTION "destroy_key"(
	"key_name" TEXT /* Option < & str > */
) RETURNS bigint /* Result < i64, ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'destroy_key_wrapper';

-- src/crypto/api.rs:526
-- warden::crypto::api::encrypt
CREATE  FUNCTION "encrypt"(
	"data" bytea, /* Option < & [u8] > */
	"key_name" TEXT, /* Option < & str > */
	"aad" bytea DEFAULT NULL /* Option < & [u8] > */
) RETURNS bytea /* Result < :: std :: option :: Option < Vec < u8 > > , ErrorReport > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'encrypt_wrapper';

-- src/crypto/api.rs:544
-- warden::crypto::api::encrypt
CREATE  FUNCTION "encrypt"(
	"data" TEXT, /* Option < & str > */
	"key_name" TEXT, /* Option < & str > */
	"aad" bytea DEFAULT NULL /* Option < & [u8] > */
) RETURNS bytea /* Result < :: std :: option :: Option < Vec < u8 > > , ErrorReport > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'encrypt_text_wrapper';

-- src/crypto/api.rs:644
-- warden::crypto::api::get_secret
CREATE  FUNCTION "get_secret"(
	"name" TEXT /* Option < & str > */
) RETURNS TEXT /* Result < String, ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'get_secret_wrapper';

-- src/keys/api.rs:627
-- warden::keys::api::key_allows
-- requires:
--   planner::_context_support
CREATE  FUNCTION "key_allows"(
	"namespace" TEXT, /* & str */
	"resource_type" TEXT, /* & str */
	"operation" TEXT /* & str */
) RETURNS bool /* Result < bool, ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'key_allows_wrapper';

-- src/protect.rs:459
-- warden::protect::protect_table
CREATE  FUNCTION "protect_table"(
	"tbl" regclass, /* Option < PgRelation > */
	"tenant_column" name DEFAULT 'tenant_id', /* Option < SqlName > */
	"distributed" bool DEFAULT NULL, /* Option < bool > */
	"namespace" TEXT DEFAULT NULL, /* Option < & str > */
	"resource_type" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'protect_table_v3_wrapper';

-- src/crypto/api.rs:599
-- warden::crypto::api::put_secret
CREATE  FUNCTION "put_secret"(
	"name" TEXT, /* Option < & str > */
	"value" TEXT /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'put_secret_wrapper';

-- src/crypto/api.rs:580
-- warden::crypto::api::reencrypt
CREATE  FUNCTION "reencrypt"(
	"data" bytea, /* Option < & [u8] > */
	"aad" bytea DEFAULT NULL /* Option < & [u8] > */
) RETURNS bytea /* Result < :: std :: option :: Option < Vec < u8 > > , ErrorReport > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'reencrypt_wrapper';

-- src/keys/api.rs:521
-- warden::keys::api::revoke_api_key
CREATE  FUNCTION "revoke_api_key"(
	"id" uuid, /* Option < pgrx :: Uuid > */
	"reason" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_api_key_wrapper';

-- src/crypto/api.rs:397
-- warden::crypto::api::rotate_key
CREATE  FUNCTION "rotate_key"(
	"key_name" TEXT /* Option < & str > */
) RETURNS INT /* Result < i32, ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'rotate_key_wrapper';

-- src/crypto/api.rs:476
-- warden::crypto::api::subject_key
CREATE  FUNCTION "subject_key"(
	"subject" uuid /* pgrx :: Uuid */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'subject_key_wrapper';

-- src/keys/api.rs:642
-- warden::keys::api::tenant_with_scope
-- requires:
--   planner::_context_support
CREATE  FUNCTION "tenant_with_scope"(
	"namespace" TEXT, /* & str */
	"resource_type" TEXT, /* & str */
	"level" TEXT /* & str */
) RETURNS uuid /* Result < Option < pgrx :: Uuid > , ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_with_scope_wrapper';


-- sql/keys.sql
-- warden API keys: scoped, hashed, revocable. Only the SHA-256 of a key and its display prefix
-- (wdn_<public id>) are stored; the plaintext is returned once by warden.create_api_key().
-- The table is closed to every role: warden's functions read and write it as its owner after
-- authorizing the caller, and warden.api_keys shows a tenant its own keys without their hashes.
CREATE TABLE warden.api_key_records (
    id            uuid PRIMARY KEY,
    public_id     text NOT NULL UNIQUE CHECK (public_id OPERATOR(pg_catalog.~) '^[0-9a-f]{12}$'),
    tenant        uuid NOT NULL,
    name          text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    level         text NOT NULL CHECK (level OPERATOR(pg_catalog.=) ANY (ARRAY['read', 'write', 'delete', 'admin'])),
    scopes        text[] NOT NULL,
    key_hash      bytea NOT NULL UNIQUE CHECK (pg_catalog.length(key_hash) OPERATOR(pg_catalog.=) 32),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by    uuid NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    revoked_by    uuid,
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
 WHERE k.tenant OPERATOR(pg_catalog.=) warden.current_tenant()
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

-- sql/classify.sql
-- warden data classification: PUBLIC < INTERNAL < CONFIDENTIAL < PHI, per schema or per table.
-- A table's own classification wins over its partition root's, which wins over its schema's.
-- Written only by warden.classify(); readable by everyone (a classification is not a secret).
CREATE TABLE warden.classification_rules (
    schema_name       regnamespace UNIQUE,
    tbl               regclass UNIQUE,
    level             text NOT NULL
                      CHECK (level OPERATOR(pg_catalog.=) ANY (ARRAY['PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI'])),
    classified_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    classified_by     uuid,
    classified_by_role name NOT NULL DEFAULT CURRENT_USER,
    CHECK ((schema_name IS NULL) OPERATOR(pg_catalog.<>) (tbl IS NULL))
);
COMMENT ON TABLE warden.classification_rules IS 'Classifications of schemas and tables, written by warden.classify(); see warden.classifications.';
REVOKE ALL ON warden.classification_rules FROM PUBLIC;
GRANT SELECT ON warden.classification_rules TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('warden.classification_rules', '');


-- sql/crypto.sql
-- warden encryption at rest: the keyring of tenants' data keys and the tenant secrets.
-- Data keys are stored only wrapped (AES-256-GCM) under the master key, which never enters the
-- database: it is read from the file named by warden.master_key_file. A dump of the database
-- alone decrypts nothing. Both tables are closed to every role; warden's functions use them as
-- their owner after checking the caller's context.
CREATE TABLE warden.keyring (
    id           uuid NOT NULL,
    version      integer NOT NULL CHECK (version OPERATOR(pg_catalog.>) 0),
    tenant       uuid NOT NULL,
    name         text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by   uuid,
    destroyed_at timestamptz,
    destroyed_by uuid,
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
 WHERE k.tenant OPERATOR(pg_catalog.=) warden.current_tenant()
    OR pg_catalog.pg_has_role('warden_admin', 'MEMBER')
    OR pg_catalog.pg_has_role('warden_auditor', 'MEMBER');
COMMENT ON VIEW warden.keys IS 'The current tenant''s encryption keys and their versions (never key material).';
GRANT SELECT ON warden.keys TO PUBLIC;

-- Tenant secrets (organization credentials), encrypted under the tenant's key "warden:secrets"
-- with the tenant and name as associated data. Row level security keeps each tenant to its own
-- rows even for a role given the table; warden.get_secret() records every read.
CREATE TABLE warden.secrets (
    tenant     uuid NOT NULL,
    name       text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    ciphertext bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by uuid,
    PRIMARY KEY (tenant, name)
);
COMMENT ON TABLE warden.secrets IS 'Tenant secrets, encrypted; written by warden.put_secret(), read by warden.get_secret().';
ALTER TABLE warden.secrets ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY secrets_tenant ON warden.secrets
    USING (tenant OPERATOR(pg_catalog.=) (SELECT warden.tenant_with_level('read')))
    WITH CHECK (tenant OPERATOR(pg_catalog.=) (SELECT warden.tenant_with_level('admin')));
REVOKE ALL ON warden.secrets FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('warden.secrets', '');

-- Names (never values) of the current tenant's secrets.
CREATE VIEW warden.secret_names WITH (security_barrier) AS
SELECT s.name, s.updated_at, s.updated_by FROM warden.secrets s
 WHERE s.tenant OPERATOR(pg_catalog.=) warden.tenant_with_level('read');
COMMENT ON VIEW warden.secret_names IS 'Names of the current tenant''s secrets (warden.get_secret() reads a value).';
GRANT SELECT ON warden.secret_names TO PUBLIC;

-- sql/finalize.sql: protected_tables names what API key scopes a table's policies check
CREATE OR REPLACE VIEW warden.protected_tables AS
SELECT c.oid::regclass AS relid,
       n.nspname       AS schema_name,
       c.relname       AS table_name,
       col.attname     AS tenant_column,
       CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END AS kind,
       (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i
         WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_of,
       CASE WHEN pg_catalog.pg_get_expr(sel.polqual, sel.polrelid) LIKE '%SELECT warden.tenant_with\_%'
            THEN 'subquery' ELSE 'direct' END AS policy_form,
       scope.m[1] AS namespace,
       scope.m[2] AS resource_type
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_policy sel ON sel.polrelid = c.oid AND sel.polname = 'warden_select'
  LEFT JOIN LATERAL (
        SELECT a.attname
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = sel.oid
           AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid > 0
         LIMIT 1) col ON true
  LEFT JOIN LATERAL (
        SELECT pg_catalog.regexp_match(pg_catalog.pg_get_expr(sel.polqual, sel.polrelid),
                                       'warden\.tenant_with_scope\(''([^'']*)''::text, ''([^'']*)''::text') AS m) scope ON true
 WHERE c.relkind IN ('r', 'p')
   AND c.relrowsecurity AND c.relforcerowsecurity
   AND (SELECT count(*) FROM pg_catalog.pg_policy p
         WHERE p.polrelid = c.oid
           AND p.polname IN ('warden_select', 'warden_insert', 'warden_update', 'warden_delete')) = 4;
COMMENT ON VIEW warden.protected_tables IS 'Tables under warden''s tenant policies (derived from the catalogs); warden.rls_coverage says whether anything undermines them. policy_form: subquery (single node) or direct (accepted by Citus on distributed tables); namespace and resource_type: what API key scopes the policies check (protect_table(..., namespace, resource_type)), NULL when only levels are checked.';

-- sql/finalize.sql: a partition added to a scoped table is protected with the same scopes
CREATE OR REPLACE FUNCTION warden._on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj  oid;
    tag  text;
    root oid;
    col  name;
    form text;
    ns   text;
    rt   text;
    part oid;
BEGIN
    IF warden._ddl_in_progress() THEN
        RETURN;  -- warden's own DDL
    END IF;
    FOR obj, tag IN
        SELECT d.objid, min(d.command_tag) FROM pg_event_trigger_ddl_commands() d
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
         GROUP BY d.objid
    LOOP
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = obj AND relkind IN ('r', 'p'));
        -- A partition tree under warden is kept whole: new, attached or weakened partitions are
        -- protected like the root (CREATE TABLE ... PARTITION OF, ALTER TABLE ... ATTACH PARTITION).
        root := coalesce(pg_partition_root(obj), obj);
        -- An audited partition tree is audited whole: the row trigger is cloned to new partitions
        -- by PostgreSQL, the TRUNCATE trigger (a statement trigger) is added here, both ALWAYS.
        -- Not in a restore (a superuser with row_security off, as pg_restore runs): the dump has
        -- every partition's trigger, restored after the tables.
        IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = root AND g.tgname = 'warden_audit_row')
           AND NOT (current_setting('row_security') = 'off'
                    AND (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)) THEN
            FOR part IN SELECT t.relid FROM pg_partition_tree(root) t LOOP
                -- checked here, not in the loop's query: the ALTER TABLE below runs this trigger
                -- again, which may already have added it to later partitions
                CONTINUE WHEN EXISTS (SELECT 1 FROM pg_trigger g
                                       WHERE g.tgrelid = part AND g.tgname = 'warden_audit_truncate');
                EXECUTE format('CREATE TRIGGER warden_audit_truncate AFTER TRUNCATE ON %s '
                               'FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_truncate()', part::regclass);
                EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER warden_audit_truncate, '
                               'ENABLE ALWAYS TRIGGER warden_audit_row', part::regclass);
            END LOOP;
        END IF;
        SELECT p.tenant_column, p.policy_form, p.namespace, p.resource_type INTO col, form, ns, rt
          FROM warden.protected_tables p WHERE p.relid = root;
        IF FOUND AND EXISTS (SELECT 1 FROM pg_partition_tree(root) t JOIN pg_class k ON k.oid = t.relid
                              WHERE k.relkind IN ('r', 'p')
                                AND NOT EXISTS (SELECT 1 FROM warden.protected_tables p WHERE p.relid = t.relid)) THEN
            PERFORM warden.protect_table(root::regclass, col, form = 'direct', ns, rt);
        -- A table created in a guarded schema starts deny-by-default.
        ELSIF tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
              AND EXISTS (SELECT 1 FROM pg_class k JOIN warden.guarded_schemas g ON g.schema_name = k.relnamespace
                           WHERE k.oid = obj AND NOT (k.relrowsecurity AND k.relforcerowsecurity)) THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', obj::regclass);
        END IF;
    END LOOP;
END
$$;


-- Data classification (sql/classify.sql holds the rules; this view reads protected_tables and
-- audited_tables).
-- Every classified schema and every table with an effective classification, with what its level
-- requires (CONFIDENTIAL and PHI: protected and audited) and whether it has it.
CREATE VIEW warden.classifications AS
WITH t AS (
    SELECT c.oid, n.nspname, c.relname,
           coalesce(own.level, root.level, sch.level) AS level,
           CASE WHEN own.level IS NOT NULL THEN 'table'
                WHEN root.level IS NOT NULL THEN 'partition root'
                ELSE 'schema' END AS source
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      LEFT JOIN warden.classification_rules own ON own.tbl OPERATOR(pg_catalog.=) c.oid
      LEFT JOIN warden.classification_rules root
             ON c.relispartition AND root.tbl OPERATOR(pg_catalog.=) pg_catalog.pg_partition_root(c.oid)
      LEFT JOIN warden.classification_rules sch ON sch.schema_name OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.relkind IN ('r', 'p')
), s AS (
    SELECT t.*,
           EXISTS (SELECT 1 FROM warden.rls_coverage p WHERE p.relid OPERATOR(pg_catalog.=) t.oid AND p.protected) AS protected,
           EXISTS (SELECT 1 FROM warden.audited_tables a WHERE a.relid OPERATOR(pg_catalog.=) t.oid AND a.enabled) AS audited
      FROM t WHERE t.level IS NOT NULL
)
SELECT 'schema'::text AS target_type, r.schema_name::text AS target, r.level, 'schema'::text AS source,
       NULL::boolean AS protected, NULL::boolean AS audited,
       NOT EXISTS (SELECT 1 FROM s WHERE s.nspname OPERATOR(pg_catalog.=) r.schema_name::text
                      AND s.source OPERATOR(pg_catalog.=) 'schema'
                      AND s.level OPERATOR(pg_catalog.=) ANY (ARRAY['CONFIDENTIAL', 'PHI'])
                      AND NOT (s.protected AND s.audited)) AS compliant,
       r.classified_at, r.classified_by, r.classified_by_role
  FROM warden.classification_rules r WHERE r.schema_name IS NOT NULL
UNION ALL
SELECT 'table', s.oid::regclass::text, s.level, s.source, s.protected, s.audited,
       s.level OPERATOR(pg_catalog.<>) ALL (ARRAY['CONFIDENTIAL', 'PHI']) OR (s.protected AND s.audited),
       r.classified_at, r.classified_by, r.classified_by_role
  FROM s LEFT JOIN warden.classification_rules r ON r.tbl OPERATOR(pg_catalog.=) s.oid;
COMMENT ON VIEW warden.classifications IS 'Classified schemas and every table''s effective classification (own, partition root''s or schema''s); compliant: CONFIDENTIAL and PHI tables are protected (as warden.rls_coverage judges it) and audited.';
GRANT SELECT ON warden.classifications TO PUBLIC;

-- The first table whose classification requires protection and auditing it does not have, as
-- text (NULL when none): what the utility hook checks after DDL that could weaken a table.
CREATE FUNCTION warden._classification_gap() RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT c.target || ' is classified ' || c.level || ' and would no longer be '
           || concat_ws(' and ', CASE WHEN NOT c.protected THEN 'protected' END,
                                 CASE WHEN NOT c.audited THEN 'audited' END)
      FROM warden.classifications c
     WHERE c.target_type = 'table' AND c.level IN ('CONFIDENTIAL', 'PHI') AND NOT c.compliant
     ORDER BY c.target LIMIT 1
$$;
