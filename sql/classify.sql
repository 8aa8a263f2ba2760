-- warden data classification: PUBLIC < INTERNAL < CONFIDENTIAL < PHI, per schema or per table.
-- A table's own classification wins over its partition root's, which wins over its schema's.
-- Written only by warden.classify(); readable by everyone (a classification is not a secret).
CREATE TABLE warden.classification_rules (
    schema_name       regnamespace UNIQUE,
    tbl               regclass UNIQUE,
    level             text NOT NULL
                      CHECK (level OPERATOR(pg_catalog.=) ANY (ARRAY['PUBLIC', 'INTERNAL', 'CONFIDENTIAL', 'PHI'])),
    classified_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    classified_by     text,
    classified_by_role name NOT NULL DEFAULT CURRENT_USER,
    CHECK ((schema_name IS NULL) OPERATOR(pg_catalog.<>) (tbl IS NULL))
);
COMMENT ON TABLE warden.classification_rules IS 'Classifications of schemas and tables, written by warden.classify(); see warden.classifications.';
REVOKE ALL ON warden.classification_rules FROM PUBLIC;
GRANT SELECT ON warden.classification_rules TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('warden.classification_rules', '');
-- with Citus, replicated by warden.citus_setup() like the holds (warden._catalog_changed, sql/hold.sql)
CREATE TRIGGER warden_changed AFTER INSERT OR UPDATE OR DELETE ON warden.classification_rules
    FOR EACH STATEMENT EXECUTE FUNCTION warden._catalog_changed('classification_rules');
ALTER TABLE warden.classification_rules ENABLE ALWAYS TRIGGER warden_changed;
-- no primary key (a schema or a table): Citus copies it to a new node by logical replication, which
-- needs a replica identity
ALTER TABLE warden.classification_rules REPLICA IDENTITY FULL;

