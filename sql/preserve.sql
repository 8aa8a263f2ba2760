-- Preserved versions (0.7.0): while a legal hold covers a row, every UPDATE of it keeps the row's
-- prior version here (the row guard, src/hold/preserve.rs). Append-only for everyone, superusers
-- and replica mode included: only warden itself removes versions (warden.discard_preserved(), once
-- their holds are released) or anonymizes them (warden.erase_subject() after the release).
CREATE TABLE warden.preserved_versions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant           text NOT NULL,
    table_name       text NOT NULL,
    -- the primary key's columns and values, or {"ctid": "(block,offset)"} without one
    row_identity     jsonb NOT NULL,
    -- the whole prior row, registered personal data included while the hold stands
    old_row          jsonb NOT NULL,
    subject          text,
    personal_columns text[] NOT NULL DEFAULT '{}',
    case_refs        text[] NOT NULL,
    holds            uuid[] NOT NULL,
    replaced_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    actor            text,
    database_role    name NOT NULL DEFAULT CURRENT_USER,
    erased_at        timestamptz
);
COMMENT ON TABLE warden.preserved_versions IS 'Prior versions of rows a legal hold covered when they were updated (append-only; warden.discard_preserved() after the release).';
CREATE INDEX preserved_versions_holds ON warden.preserved_versions USING gin (holds);
CREATE INDEX preserved_versions_subject ON warden.preserved_versions (tenant, subject);
CREATE FUNCTION warden._preserved_immutable() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_preserved_immutable';
CREATE TRIGGER warden_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON warden.preserved_versions
    FOR EACH STATEMENT EXECUTE FUNCTION warden._preserved_immutable();
ALTER TABLE warden.preserved_versions ENABLE ALWAYS TRIGGER warden_immutable;
-- Who reads them: warden_auditor every tenant's; a tenant's admin its own; nobody else.
ALTER TABLE warden.preserved_versions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY preserved_versions_auditor ON warden.preserved_versions FOR SELECT TO warden_auditor USING (true);
CREATE POLICY preserved_versions_tenant_admin ON warden.preserved_versions FOR SELECT TO PUBLIC
    USING (tenant OPERATOR(pg_catalog.=) (SELECT warden.tenant_with_level_text('admin')));
REVOKE ALL ON warden.preserved_versions FROM PUBLIC;
GRANT SELECT ON warden.preserved_versions TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('warden.preserved_versions', '');
SELECT pg_catalog.pg_extension_config_dump('warden.preserved_versions_id_seq', '');
