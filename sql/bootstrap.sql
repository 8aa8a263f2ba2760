-- warden bootstrap: runs first in CREATE EXTENSION warden (schema warden already exists).

-- Members may call warden.set_context(): the application's own, trusted auth middleware.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'warden_context_setter') THEN
        CREATE ROLE warden_context_setter NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA warden TO PUBLIC;

-- Schemas where every new table starts with row level security enabled and forced.
-- regnamespace survives pg_dump (it is dumped by name). Rows are added by warden.guard_schema();
-- the policies let a role guard or unguard only the schemas it owns.
CREATE TABLE warden.guarded_schemas (
    schema_name regnamespace PRIMARY KEY,
    guarded_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    guarded_by  name NOT NULL DEFAULT CURRENT_USER
);
COMMENT ON TABLE warden.guarded_schemas IS 'Schemas guarded by warden.guard_schema(): new tables are deny-by-default.';
ALTER TABLE warden.guarded_schemas ENABLE ROW LEVEL SECURITY;
CREATE POLICY guarded_schemas_read ON warden.guarded_schemas FOR SELECT USING (true);
CREATE POLICY guarded_schemas_add ON warden.guarded_schemas FOR INSERT
    WITH CHECK (pg_catalog.pg_has_role((SELECT nspowner FROM pg_catalog.pg_namespace WHERE oid = schema_name), 'USAGE')
                AND guarded_by OPERATOR(pg_catalog.=) CURRENT_USER);
CREATE POLICY guarded_schemas_remove ON warden.guarded_schemas FOR DELETE
    USING (pg_catalog.pg_has_role((SELECT nspowner FROM pg_catalog.pg_namespace WHERE oid = schema_name), 'USAGE'));
GRANT SELECT, INSERT, DELETE ON warden.guarded_schemas TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('warden.guarded_schemas', '');
