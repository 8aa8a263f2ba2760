-- warden 0.1.0 -> 0.2.0
-- * The context carrier warden.context_token is verified by a check hook when it is set (any role may
--   set it, only to a token that verifies) and counts only while transaction-local: behaviour of the
--   library, no SQL change.
-- * Policies in a form Citus accepts: protect_table(..., distributed) writes them as a direct call,
--   which the planner support function of tenant_with_level (and of the accessors) turns into a
--   once-per-statement InitPlan.
-- * The context readers are PARALLEL RESTRICTED: parallel workers never read the context.
\echo Use "ALTER EXTENSION warden UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION warden."_context_support"(
	"request" internal
) RETURNS internal
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_context_support_wrapper';

ALTER FUNCTION warden.tenant_with_level(text) PARALLEL RESTRICTED SUPPORT warden."_context_support";
ALTER FUNCTION warden.current_tenant() PARALLEL RESTRICTED SUPPORT warden."_context_support";
ALTER FUNCTION warden.current_actor() PARALLEL RESTRICTED SUPPORT warden."_context_support";
ALTER FUNCTION warden.current_level() PARALLEL RESTRICTED SUPPORT warden."_context_support";
ALTER FUNCTION warden.has_level(text) PARALLEL RESTRICTED SUPPORT warden."_context_support";

DROP FUNCTION warden.protect_table(regclass, name);
CREATE FUNCTION warden."protect_table"(
	"tbl" regclass,
	"tenant_column" name DEFAULT 'tenant_id',
	"distributed" bool DEFAULT NULL
) RETURNS VOID
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'protect_table_v2_wrapper';

CREATE OR REPLACE VIEW warden.protected_tables AS
SELECT c.oid::regclass AS relid,
       n.nspname       AS schema_name,
       c.relname       AS table_name,
       col.attname     AS tenant_column,
       CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END AS kind,
       (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i
         WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_of,
       CASE WHEN pg_catalog.pg_get_expr(sel.polqual, sel.polrelid) LIKE '%SELECT warden.tenant_with_level(%'
            THEN 'subquery' ELSE 'direct' END AS policy_form
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
 WHERE c.relkind IN ('r', 'p')
   AND c.relrowsecurity AND c.relforcerowsecurity
   AND (SELECT count(*) FROM pg_catalog.pg_policy p
         WHERE p.polrelid = c.oid
           AND p.polname IN ('warden_select', 'warden_insert', 'warden_update', 'warden_delete')) = 4;
COMMENT ON VIEW warden.protected_tables IS 'Tables under warden''s tenant policies (derived from the catalogs); warden.rls_coverage says whether anything undermines them. policy_form: subquery (single node) or direct (accepted by Citus on distributed tables).';

CREATE OR REPLACE FUNCTION warden._on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj  oid;
    tag  text;
    root oid;
    col  name;
    form text;
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
        SELECT p.tenant_column, p.policy_form INTO col, form FROM warden.protected_tables p WHERE p.relid = root;
        IF FOUND AND EXISTS (SELECT 1 FROM pg_partition_tree(root) t JOIN pg_class k ON k.oid = t.relid
                              WHERE k.relkind IN ('r', 'p')
                                AND NOT EXISTS (SELECT 1 FROM warden.protected_tables p WHERE p.relid = t.relid)) THEN
            PERFORM warden.protect_table(root::regclass, col, form = 'direct');
        -- A table created in a guarded schema starts deny-by-default.
        ELSIF tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
              AND EXISTS (SELECT 1 FROM pg_class k JOIN warden.guarded_schemas g ON g.schema_name = k.relnamespace
                           WHERE k.oid = obj AND NOT (k.relrowsecurity AND k.relforcerowsecurity)) THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', obj::regclass);
        END IF;
    END LOOP;
END
$$;
