-- warden finalize: views, the DDL event trigger and privileges, after every function exists.

-- A table is protected when RLS is enabled and forced and all four warden policies exist.
-- The tenant column is read from the policy's dependency on it, so nothing is stored twice.
CREATE VIEW warden.protected_tables AS
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
       scope.m[2] AS resource_type,
       pg_catalog.format_type(col.atttypid, NULL) AS tenant_type
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_policy sel ON sel.polrelid = c.oid AND sel.polname = 'warden_select'
  LEFT JOIN LATERAL (
        SELECT a.attname, a.atttypid
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = sel.oid
           AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid > 0
         LIMIT 1) col ON true
  LEFT JOIN LATERAL (
        SELECT pg_catalog.regexp_match(pg_catalog.pg_get_expr(sel.polqual, sel.polrelid),
                                       'warden\.tenant_with_scope(?:_[a-z]+)?\(''([^'']*)''::text, ''([^'']*)''::text') AS m) scope ON true
 WHERE c.relkind IN ('r', 'p')
   AND c.relrowsecurity AND c.relforcerowsecurity
   AND (SELECT count(*) FROM pg_catalog.pg_policy p
         WHERE p.polrelid = c.oid
           AND p.polname IN ('warden_select', 'warden_insert', 'warden_update', 'warden_delete')) = 4;
COMMENT ON VIEW warden.protected_tables IS 'Tables under warden''s tenant policies (derived from the catalogs); warden.rls_coverage says whether anything undermines them. policy_form: subquery (single node) or direct (accepted by Citus on distributed tables); namespace and resource_type: what API key scopes the policies check (protect_table(..., namespace, resource_type)), NULL when only levels are checked; tenant_type: the tenant column''s type (uuid, text, character varying, bigint or integer), which decides the accessor its policies compare it with.';

CREATE VIEW warden.rls_coverage AS
WITH t AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
           (SELECT count(*)::int FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid) AS policy_count,
           (SELECT pg_catalog.string_agg(w, ', ' ORDER BY w)
              FROM pg_catalog.unnest(ARRAY['warden_delete', 'warden_insert', 'warden_select', 'warden_update']) w
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid AND p.polname = w))
               AS missing,
           (SELECT pg_catalog.string_agg(p.polname, ', ' ORDER BY p.polname) FROM pg_catalog.pg_policy p
             WHERE p.polrelid = c.oid AND p.polpermissive AND p.polname NOT LIKE 'warden\_%') AS other_permissive,
           (SELECT pg_catalog.string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
                                         ', ' ORDER BY 1)
              FROM pg_catalog.aclexplode(c.relacl) a
             WHERE a.privilege_type = 'TRUNCATE' AND a.grantee <> c.relowner) AS truncaters
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'warden')
       AND n.nspname !~ '^pg_(toast|temp_)'
)
SELECT t.oid::regclass AS relid,
       t.nspname AS schema_name,
       t.relname AS table_name,
       CASE t.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END AS kind,
       t.relrowsecurity AS rls_enabled,
       t.relforcerowsecurity AS rls_forced,
       t.policy_count,
       (t.relrowsecurity AND t.relforcerowsecurity AND t.missing IS NULL
        AND t.other_permissive IS NULL AND t.truncaters IS NULL) AS protected,
       NULLIF(pg_catalog.concat_ws('; ',
           CASE WHEN NOT t.relrowsecurity
                THEN 'row level security is disabled: every role with table privileges sees every row' END,
           CASE WHEN t.relrowsecurity AND NOT t.relforcerowsecurity
                THEN 'row level security is not forced: the table owner bypasses it' END,
           CASE WHEN t.relrowsecurity AND t.policy_count = 0
                THEN 'no policies: every row is hidden until the table is protected' END,
           CASE WHEN t.missing IS NOT NULL AND t.missing <> 'warden_delete, warden_insert, warden_select, warden_update'
                THEN 'warden policies missing: ' || t.missing END,
           CASE WHEN t.other_permissive IS NOT NULL
                THEN 'permissive policies not managed by warden (' || t.other_permissive || ') are OR-ed with tenant isolation' END,
           CASE WHEN t.truncaters IS NOT NULL
                THEN 'TRUNCATE, which bypasses row level security, is granted to ' || t.truncaters END
       ), '') AS problem
  FROM t;
COMMENT ON VIEW warden.rls_coverage IS 'Every ordinary and partitioned table outside the system schemas, with its row level security state and what is wrong with it. protected means: warden''s four policies in force, RLS forced, and nothing that widens or bypasses them (other permissive policies, TRUNCATE grants).';

CREATE FUNCTION warden.rls_coverage_percent() RETURNS numeric
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT round(100.0 * count(*) FILTER (WHERE protected) / NULLIF(count(*), 0), 1) FROM warden.rls_coverage
$$;
COMMENT ON FUNCTION warden.rls_coverage_percent() IS 'Share of the tables in warden.rls_coverage that are protected, in percent; NULL when there are none.';

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
ALTER FUNCTION warden.delete_account(text, text) SET row_security = on;
ALTER FUNCTION warden.put_secret(text, text) SET row_security = on;
ALTER FUNCTION warden.get_secret(text) SET row_security = on;

-- New tables: partitions of protected tables are protected like their root; tables in guarded
-- schemas start deny-by-default (RLS enabled and forced, no policy).
CREATE FUNCTION warden._on_ddl_command_end() RETURNS event_trigger
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

CREATE EVENT TRIGGER warden_ddl_command_end ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
    EXECUTE FUNCTION warden._on_ddl_command_end();

GRANT SELECT ON warden.protected_tables, warden.rls_coverage TO PUBLIC;

-- Only trusted middleware mints contexts.
REVOKE EXECUTE ON FUNCTION warden.set_context(uuid, uuid, text), warden.set_context(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.set_context(uuid, uuid, text), warden.set_context(text, text, text) TO warden_context_setter;

-- Audit trail: verification, export and the queue's state are for warden_auditor (and superusers);
-- purging and sealing by hand for superusers only.
REVOKE EXECUTE ON FUNCTION warden.verify_audit(bigint, bigint), warden.audit_digest(),
    warden.verify_audit_digest(bigint, bytea), warden.audit_export(bigint, int),
    warden.audit_queue_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.verify_audit(bigint, bigint), warden.audit_digest(),
    warden.verify_audit_digest(bigint, bytea), warden.audit_export(bigint, int),
    warden.audit_queue_status() TO warden_auditor;
REVOKE EXECUTE ON FUNCTION warden.purge_audit(), warden.seal_audit() FROM PUBLIC;

-- Citus: one answer for the cluster. Each node keeps its own chain (the row changes of the shards
-- it holds, the authentications, refusals and PHI reads it saw); these ask every node in Citus's
-- metadata (run_command_on_all_nodes, as the functions' owner) and answer for all. Without Citus,
-- for this node alone ('local').
CREATE FUNCTION warden.verify_cluster_audit()
RETURNS TABLE (node text, intact boolean, checked bigint, first_bad_id bigint, reason text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regproc('pg_catalog.run_command_on_all_nodes') IS NULL
       OR pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NULL THEN
        RETURN QUERY SELECT 'local'::text, v.intact, v.checked, v.first_bad_id, v.reason FROM warden.verify_audit() v;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        WITH r AS (
            SELECT pg_catalog.format('%s:%s', n.nodename, n.nodeport) AS node, n.groupid, n.nodeid, x.success,
                   CASE WHEN x.success THEN x.result::jsonb END AS j, x.result
              FROM pg_catalog.run_command_on_all_nodes(
                     'SELECT pg_catalog.row_to_json(v)::text FROM warden.verify_audit() v') x
              JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) x.nodeid
        ), per_node AS (
            SELECT r.node, r.groupid, r.nodeid,
                   r.success AND coalesce((r.j OPERATOR(pg_catalog.->>) 'intact')::boolean, false) AS intact,
                   (r.j OPERATOR(pg_catalog.->>) 'checked')::bigint AS checked,
                   (r.j OPERATOR(pg_catalog.->>) 'first_bad_id')::bigint AS first_bad_id,
                   CASE WHEN r.success THEN r.j OPERATOR(pg_catalog.->>) 'reason'
                        ELSE 'the node could not be asked: ' OPERATOR(pg_catalog.||) r.result END AS reason
              FROM r
        )
        SELECT p.node, p.intact, p.checked, p.first_bad_id, p.reason FROM (
            SELECT per_node.node, per_node.intact, per_node.checked, per_node.first_bad_id, per_node.reason,
                   0 AS o, per_node.groupid, per_node.nodeid
              FROM per_node
            UNION ALL
            SELECT 'all nodes', pg_catalog.bool_and(per_node.intact), pg_catalog.sum(per_node.checked)::bigint, NULL,
                   'not intact: ' OPERATOR(pg_catalog.||) pg_catalog.string_agg(per_node.node, ', ') FILTER (WHERE NOT per_node.intact),
                   1, 0, 0
              FROM per_node) p
         ORDER BY p.o, p.groupid, p.nodeid $q$;
END
$$;
COMMENT ON FUNCTION warden.verify_cluster_audit() IS 'verify_audit() of every node of a Citus cluster (one chain per node) and one answer for all; without Citus, of this node.';

-- Every node's sealed events of a period, in one result: the cluster's trail for compliance staff.
CREATE FUNCTION warden.cluster_audit_trail(
    period_from timestamptz DEFAULT (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 day'),
    period_to timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (node text, id bigint, occurred_at timestamptz, tenant text, actor text, action text,
               resource_type text, resource_id text, changes jsonb, status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    q text := pg_catalog.format(
        'SELECT coalesce(pg_catalog.json_agg(e ORDER BY e.id), ''[]'')::text
           FROM (SELECT id, occurred_at, tenant, actor, action, resource_type, resource_id, changes, status
                   FROM warden.audit_events
                  WHERE occurred_at OPERATOR(pg_catalog.>=) %L::timestamptz
                    AND occurred_at OPERATOR(pg_catalog.<) %L::timestamptz) e', period_from, period_to);
BEGIN
    IF period_from IS NULL OR period_to IS NULL OR period_from OPERATOR(pg_catalog.>=) period_to THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'warden: warden.cluster_audit_trail() needs a period whose start is before its end',
            HINT = 'SELECT * FROM warden.cluster_audit_trail(now() - interval ''1 day'', now());';
    END IF;
    IF pg_catalog.to_regproc('pg_catalog.run_command_on_all_nodes') IS NULL
       OR pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NULL THEN
        RETURN QUERY EXECUTE
            'SELECT ''local''::text, e.id, e.occurred_at, e.tenant, e.actor, e.action, e.resource_type, e.resource_id, e.changes, e.status
               FROM pg_catalog.jsonb_to_recordset((' || q || ')::jsonb)
                 AS e(id bigint, occurred_at timestamptz, tenant text, actor text, action text,
                      resource_type text, resource_id text, changes jsonb, status text)
              ORDER BY e.occurred_at, e.id';
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT pg_catalog.format('%s:%s', n.nodename, n.nodeport), e.id, e.occurred_at, e.tenant, e.actor,
               e.action, e.resource_type, e.resource_id, e.changes, e.status
          FROM pg_catalog.run_command_on_all_nodes($1) x
          JOIN pg_catalog.pg_dist_node n ON n.nodeid OPERATOR(pg_catalog.=) x.nodeid
         CROSS JOIN LATERAL pg_catalog.jsonb_to_recordset(
                 CASE WHEN x.success THEN x.result::jsonb
                      ELSE warden._cluster_node_failed(pg_catalog.format('%s:%s', n.nodename, n.nodeport), x.result) END)
                 AS e(id bigint, occurred_at timestamptz, tenant text, actor text, action text,
                      resource_type text, resource_id text, changes jsonb, status text)
         ORDER BY e.occurred_at, n.groupid, e.id $q$ USING q;
END
$$;
COMMENT ON FUNCTION warden.cluster_audit_trail(timestamptz, timestamptz) IS 'The sealed events of a period on every node of a Citus cluster (each node''s own chain), with the node; without Citus, of this node.';

-- A node that cannot be asked makes the cluster's trail fail (never a silently partial answer).
CREATE FUNCTION warden._cluster_node_failed(node text, result text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '55000',
        MESSAGE = pg_catalog.format('warden: node %s could not be asked for its audit trail: %s', node, result),
        HINT = 'Check the node (SELECT * FROM citus_check_cluster_node_health();) and ask again.';
END
$$;

REVOKE EXECUTE ON FUNCTION warden.verify_cluster_audit(), warden.cluster_audit_trail(timestamptz, timestamptz),
    warden._cluster_node_failed(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.verify_cluster_audit(), warden.cluster_audit_trail(timestamptz, timestamptz)
    TO warden_auditor;

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
