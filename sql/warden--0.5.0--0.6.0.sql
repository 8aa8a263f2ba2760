-- warden 0.5.0 -> 0.6.0. tests/ops/upgrade.sh proves the result matches a fresh install.
--
-- Transparency (issue 14): the DDL event trigger and warden's functions read warden's own
-- row-level-secured tables whatever the caller's row_security (pg_dump's scripts set it off, and
-- an ordinary owner's DDL then failed with "query would be affected by row-level security policy
-- for table guarded_schemas").

-- Whether a table is in a schema warden.guard_schema() guards. SECURITY DEFINER: the event
-- trigger below runs as whoever ran the DDL, and warden.guarded_schemas has row level security,
-- so with row_security = off (pg_dump's scripts set it) reading it as an ordinary owner would fail
-- ("query would be affected by row-level security policy"). Every row is readable by anyone anyway.
CREATE FUNCTION warden._in_guarded_schema(rel oid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_class k JOIN warden.guarded_schemas g ON g.schema_name = k.relnamespace
                    WHERE k.oid = rel)
$$;
COMMENT ON FUNCTION warden._in_guarded_schema(oid) IS 'Internal: whether the table is in a schema guarded by warden.guard_schema(), whatever the caller''s row_security.';

-- warden's functions that read or write its row-level-secured tables as their caller
-- (guarded_schemas, membership_tables, secrets) do so whatever the caller's row_security: its
-- policies are warden's rules, not the caller's choice, and row_security = off would only turn
-- them into errors.
ALTER FUNCTION warden.guard_schema(name) SET row_security = on;
ALTER FUNCTION warden.unguard_schema(name) SET row_security = on;
ALTER FUNCTION warden.unprotect_table(regclass) SET row_security = on;
ALTER FUNCTION warden.register_memberships(regclass, name, name) SET row_security = on;
ALTER FUNCTION warden.delete_account(uuid, text) SET row_security = on;
ALTER FUNCTION warden.put_secret(text, text) SET row_security = on;
ALTER FUNCTION warden.get_secret(text) SET row_security = on;

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
              AND warden._in_guarded_schema(obj)
              AND EXISTS (SELECT 1 FROM pg_class k
                           WHERE k.oid = obj AND NOT (k.relrowsecurity AND k.relforcerowsecurity)) THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', obj::regclass);
        END IF;
    END LOOP;
END
$$;

