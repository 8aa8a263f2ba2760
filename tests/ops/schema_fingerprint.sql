-- Everything CREATE EXTENSION warden (or ALTER EXTENSION warden UPDATE) leaves in a database, one
-- line per object or attribute, sorted: two databases with the same fingerprint have the same
-- warden schema. Used by tests/ops/upgrade.sh to compare an upgraded database with a fresh install.
\pset format unaligned
\pset tuples_only on
\pset footer off
WITH ext AS (
    SELECT oid, extversion, extrelocatable, extnamespace, extconfig, extcondition
      FROM pg_catalog.pg_extension WHERE extname = 'warden'
), member AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rel AS (
    SELECT c.* FROM pg_catalog.pg_class c JOIN member m ON m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = c.oid
)
SELECT line FROM (
    -- the extension itself
    SELECT 'extension: version ' || extversion || ', relocatable ' || extrelocatable || ', schema ' || extnamespace::regnamespace
           || ', config ' || coalesce((SELECT string_agg(c::regclass::text || ' ' || coalesce(extcondition[i], ''), ', ' ORDER BY c::regclass::text)
                                         FROM pg_catalog.unnest(extconfig) WITH ORDINALITY u(c, i)), '')
      FROM ext
    UNION ALL
    -- every member, by its stable identity
    SELECT 'member: ' || pg_catalog.pg_describe_object(classid, objid, objsubid) FROM member
    UNION ALL
    -- functions: the full definition (language, volatility, strictness, security, SET, parallel, body or symbol) and ACL
    SELECT 'function: ' || pg_catalog.pg_get_functiondef(p.oid) || E'\n  acl: ' || coalesce(p.proacl::text, 'default')
           || E'\n  comment: ' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
      FROM pg_catalog.pg_proc p JOIN member m ON m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    -- relations: kind, RLS flags, ACL, comment
    SELECT 'relation: ' || c.oid::regclass || ' kind ' || c.relkind::text || ' rls ' || c.relrowsecurity || ' force ' || c.relforcerowsecurity
           || ' acl ' || coalesce(c.relacl::text, 'default') || ' comment ' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '')
      FROM rel c
    UNION ALL
    SELECT 'view: ' || c.oid::regclass || E'\n' || pg_catalog.pg_get_viewdef(c.oid) FROM rel c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'column: ' || c.oid::regclass || '.' || a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
           || coalesce(' identity ' || nullif(a.attidentity::text, ''), '') || ' acl ' || coalesce(a.attacl::text, 'default')
      FROM rel c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'constraint: ' || c.oid::regclass || ' ' || k.conname || ' ' || pg_catalog.pg_get_constraintdef(k.oid)
      FROM rel c JOIN pg_catalog.pg_constraint k ON k.conrelid = c.oid
    UNION ALL
    SELECT 'index: ' || pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM rel c JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
    UNION ALL
    SELECT 'policy: ' || c.oid::regclass || ' ' || p.polname || ' ' || p.polcmd::text || ' permissive ' || p.polpermissive
           || ' to ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ',' ORDER BY 1) FROM pg_catalog.unnest(p.polroles) r)
           || ' using ' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '-')
           || ' check ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '-')
      FROM rel c JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid
    UNION ALL
    SELECT 'trigger: ' || pg_catalog.pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
      FROM rel c JOIN pg_catalog.pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'event trigger: ' || e.evtname || ' on ' || e.evtevent || ' enabled ' || e.evtenabled::text
           || ' tags ' || coalesce(e.evttags::text, 'all') || ' function ' || e.evtfoid::regprocedure
      FROM pg_catalog.pg_event_trigger e JOIN member m ON m.classid = 'pg_catalog.pg_event_trigger'::regclass AND m.objid = e.oid
    UNION ALL
    SELECT 'type: ' || t.oid::regtype || ' ' || t.typtype::text || ' ' || coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
                                                                              FROM pg_catalog.pg_enum WHERE enumtypid = t.oid), '')
      FROM pg_catalog.pg_type t JOIN member m ON m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    -- the schema's own privileges, and the roles warden creates
    SELECT 'schema: ' || n.nspname || ' acl ' || coalesce(n.nspacl::text, 'default')
      FROM pg_catalog.pg_namespace n, ext WHERE n.oid = ext.extnamespace
    UNION ALL
    SELECT 'role: ' || rolname || ' login ' || rolcanlogin || ' super ' || rolsuper || ' bypassrls ' || rolbypassrls
      FROM pg_catalog.pg_roles WHERE rolname LIKE 'warden\_%'
) lines(line)
ORDER BY line;
