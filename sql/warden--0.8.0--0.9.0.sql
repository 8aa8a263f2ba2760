-- warden 0.8.0 -> 0.9.0. tests/ops/upgrade.sh proves the result matches a fresh install.
--
-- Scale-out, the other half (issue 19): legal holds on Citus distributed tables.
-- warden.citus_setup() makes the holds, their releases and the personal-data registry Citus
-- reference tables (a copy on every node, written in the coordinator's transaction); each gets a
-- trigger that Citus copies to every copy, invalidating the node's cached holds and registry when
-- a write arrives from the coordinator. The guards go on distributed tables (Citus copies the row
-- guard to every shard, where it decides with the replicated holds).

-- No foreign key between the two hold tables: Citus converts tables in a foreign-key graph to
-- "Citus local tables" first, which drops and recreates the views on them (warden.legal_holds, an
-- extension member, cannot be). warden.release_hold() checks that the hold exists, and both
-- tables are append-only.
ALTER TABLE warden.hold_releases DROP CONSTRAINT hold_releases_hold_fkey;

-- warden::catalog::citus::citus_setup
CREATE FUNCTION warden."citus_setup"() RETURNS TABLE (
	"tbl" TEXT,
	"placements" bigint,
	"status" TEXT
)
STRICT VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'citus_setup_wrapper';

CREATE FUNCTION warden._catalog_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_catalog_changed';
CREATE TRIGGER warden_changed AFTER INSERT OR UPDATE OR DELETE ON warden.holds
    FOR EACH STATEMENT EXECUTE FUNCTION warden._catalog_changed('holds');
CREATE TRIGGER warden_changed AFTER INSERT OR UPDATE OR DELETE ON warden.hold_releases
    FOR EACH STATEMENT EXECUTE FUNCTION warden._catalog_changed('hold_releases');
CREATE TRIGGER warden_changed AFTER INSERT OR UPDATE OR DELETE ON warden.personal_data
    FOR EACH STATEMENT EXECUTE FUNCTION warden._catalog_changed('personal_data');
ALTER TABLE warden.holds ENABLE ALWAYS TRIGGER warden_changed;
ALTER TABLE warden.hold_releases ENABLE ALWAYS TRIGGER warden_changed;
ALTER TABLE warden.personal_data ENABLE ALWAYS TRIGGER warden_changed;
CREATE TRIGGER warden_changed AFTER INSERT OR UPDATE OR DELETE ON warden.classification_rules
    FOR EACH STATEMENT EXECUTE FUNCTION warden._catalog_changed('classification_rules');
ALTER TABLE warden.classification_rules ENABLE ALWAYS TRIGGER warden_changed;
-- no primary key (a schema or a table): Citus copies it to a new node by logical replication, which
-- needs a replica identity
ALTER TABLE warden.classification_rules REPLICA IDENTITY FULL;

-- Installs or repairs the guards on one table of a protected tree (warden.protect_table() and
-- warden.place_hold() call it): BEFORE DELETE OR TRUNCATE per statement on every table, BEFORE
-- DELETE OR UPDATE per row on leaf tables, both enabled ALWAYS. On a Citus distributed table,
-- with citus.enable_unsafe_triggers on for these statements only: Citus then copies the row
-- guard to every shard (the statement guard stays on the coordinator's table, where TRUNCATE and
-- DROP are checked; the row guard applies its rule on the shards).
CREATE OR REPLACE FUNCTION warden._install_hold_guards(tbl regclass, tenant_column name) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args bytea := pg_catalog.convert_to(tenant_column::text, 'UTF8') OPERATOR(pg_catalog.||) '\x00'::bytea;
    leaf boolean := (SELECT k.relkind OPERATOR(pg_catalog.=) 'r' FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) tbl);
    unsafe_saved text := pg_catalog.current_setting('citus.enable_unsafe_triggers', true);
    distributed boolean := false;
BEGIN
    IF unsafe_saved IS NOT NULL AND pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1)'
           INTO distributed USING tbl;
    END IF;
    IF distributed THEN
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                    WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl AND g.tgname OPERATOR(pg_catalog.=) 'warden_hold_statement'
                      AND g.tgargs OPERATOR(pg_catalog.=) args) THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl
                     AND g.tgname OPERATOR(pg_catalog.=) 'warden_hold_statement') THEN
            EXECUTE pg_catalog.format('DROP TRIGGER warden_hold_statement ON %s', tbl);
        END IF;
        EXECUTE pg_catalog.format('CREATE TRIGGER warden_hold_statement BEFORE DELETE OR TRUNCATE ON %s '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION warden._hold_guard_statement(%L)', tbl, tenant_column);
    END IF;
    IF leaf AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                             WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl AND g.tgname OPERATOR(pg_catalog.=) 'warden_hold_row'
                               AND g.tgargs OPERATOR(pg_catalog.=) args) THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl
                     AND g.tgname OPERATOR(pg_catalog.=) 'warden_hold_row') THEN
            EXECUTE pg_catalog.format('DROP TRIGGER warden_hold_row ON %s', tbl);
        END IF;
        EXECUTE pg_catalog.format('CREATE TRIGGER warden_hold_row BEFORE DELETE OR UPDATE ON %s '
                                  'FOR EACH ROW EXECUTE FUNCTION warden._hold_guard_row(%L)', tbl, tenant_column);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl AND g.tgname IN ('warden_hold_statement', 'warden_hold_row')
                  AND g.tgenabled OPERATOR(pg_catalog.<>) 'A') THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER warden_hold_statement', tbl);
        IF leaf THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ALWAYS TRIGGER warden_hold_row', tbl);
        END IF;
    END IF;
    IF distributed THEN
        PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', unsafe_saved, true);
    END IF;
END
$$;

-- warden.citus_setup()'s step for one table (it lets Citus's DDL on warden's tables through while
-- it runs): a Citus reference table, with its triggers copied to every placement (Citus copies
-- them only with citus.enable_unsafe_triggers, set here for this statement only).
CREATE FUNCTION warden._citus_reference(tbl regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    saved text := pg_catalog.current_setting('citus.enable_unsafe_triggers');
BEGIN
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING tbl;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', saved, true);
END
$$;
REVOKE EXECUTE ON FUNCTION warden._citus_reference(regclass) FROM PUBLIC;

-- verify_holds() also asks every shard of a covered distributed table for its row guard, and every
-- worker for the prior versions it keeps.
CREATE OR REPLACE FUNCTION warden.verify_holds()
RETURNS TABLE (hold uuid, case_ref text, check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h     record;
    t     record;
    now_rows jsonb;
    missing text;
    kept  bigint;
    kept_tables bigint;
    w_kept bigint;
    w_tables bigint;
    unseen bigint;
BEGIN
    hold := NULL; case_ref := NULL;
    check_name := 'warden preloaded';
    ok := 'warden' OPERATOR(pg_catalog.=) ANY (pg_catalog.string_to_array(
              pg_catalog.replace(pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','));
    detail := CASE WHEN ok THEN 'the utility hook guards DROP and ALTER TABLE'
                   ELSE 'warden is not in shared_preload_libraries: DROP and ALTER TABLE are not guarded' END;
    RETURN NEXT;
    check_name := 'guard can read holds';
    ok := pg_catalog.has_table_privilege('warden_guard', 'warden.holds', 'SELECT')
          AND pg_catalog.has_table_privilege('warden_guard', 'warden.hold_releases', 'SELECT')
          AND pg_catalog.has_table_privilege('warden_guard', 'warden.personal_data', 'SELECT');
    detail := CASE WHEN ok THEN 'warden_guard reads warden.holds, hold_releases and personal_data'
                   ELSE 'warden_guard cannot read the holds: every guarded DELETE and TRUNCATE is refused' END;
    RETURN NEXT;
    check_name := 'holds append-only';
    ok := (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g
            WHERE g.tgrelid IN ('warden.holds'::regclass, 'warden.hold_releases'::regclass)
              AND g.tgname OPERATOR(pg_catalog.=) 'warden_immutable' AND g.tgenabled OPERATOR(pg_catalog.=) 'A') OPERATOR(pg_catalog.=) 2;
    detail := CASE WHEN ok THEN 'immutability triggers enabled ALWAYS'
                   ELSE 'an immutability trigger of warden.holds or warden.hold_releases is missing or not enabled ALWAYS' END;
    RETURN NEXT;
    -- Every hold ever placed or released is an audit event; a hold row deleted behind the
    -- triggers' back leaves its event without a row.
    check_name := 'holds match the audit trail';
    SELECT pg_catalog.string_agg(e.resource_id, ', ' ORDER BY e.resource_id) INTO missing
      FROM (SELECT a.resource_id FROM warden.audit_events a WHERE a.action OPERATOR(pg_catalog.=) 'place_hold'
            UNION SELECT p.resource_id FROM warden.audit_pending p WHERE p.action OPERATOR(pg_catalog.=) 'place_hold') e
     WHERE NOT EXISTS (SELECT 1 FROM warden.holds x WHERE x.id::text OPERATOR(pg_catalog.=) e.resource_id);
    SELECT missing || coalesce('; no place_hold event for ' || pg_catalog.string_agg(x.id::text, ', '), '') INTO missing
      FROM warden.holds x
     WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold OPERATOR(pg_catalog.=) x.id)
       AND NOT EXISTS (SELECT 1 FROM warden.audit_events a WHERE a.action OPERATOR(pg_catalog.=) 'place_hold'
                          AND a.resource_id OPERATOR(pg_catalog.=) x.id::text)
       AND NOT EXISTS (SELECT 1 FROM warden.audit_pending p WHERE p.action OPERATOR(pg_catalog.=) 'place_hold'
                          AND p.resource_id OPERATOR(pg_catalog.=) x.id::text);
    ok := missing IS NULL OR missing OPERATOR(pg_catalog.=) '';
    detail := CASE WHEN ok THEN 'every place_hold event has its hold, every active hold its event'
                   ELSE 'holds missing for events: ' || missing END;
    RETURN NEXT;
    FOR h IN SELECT x.* FROM warden.holds x
              WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold OPERATOR(pg_catalog.=) x.id)
              ORDER BY x.placed_at, x.id
    LOOP
        hold := h.id; case_ref := h.case_ref;
        check_name := 'guards';
        SELECT pg_catalog.string_agg(p.relid::text, ', ' ORDER BY p.relid::text) INTO missing
          FROM warden.protected_tables p JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) p.relid
         WHERE (h.tbl IS NULL OR p.relid OPERATOR(pg_catalog.=) h.tbl OR p.relid IN (SELECT x.relid FROM pg_catalog.pg_partition_tree(h.tbl) x))
           AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g
                 WHERE g.tgrelid OPERATOR(pg_catalog.=) p.relid AND g.tgenabled OPERATOR(pg_catalog.=) 'A'
                   AND g.tgname IN ('warden_hold_statement', 'warden_hold_row'))
               OPERATOR(pg_catalog.<) CASE k.relkind WHEN 'r' THEN 2 ELSE 1 END;
        ok := missing IS NULL AND (h.tbl IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) h.tbl));
        detail := CASE WHEN ok THEN 'every covered table has both guards enabled ALWAYS'
                       WHEN missing IS NULL THEN 'the held table ' || h.table_name || ' no longer exists'
                       ELSE 'guards missing or not enabled ALWAYS on: ' || missing END;
        RETURN NEXT;
        -- Citus: the row guard must be on every shard of every covered distributed table, on
        -- whichever node holds it (asked of each shard's node)
        IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
           AND pg_catalog.to_regproc('pg_catalog.run_command_on_shards') IS NOT NULL THEN
            EXECUTE $q$
                SELECT pg_catalog.string_agg(pg_catalog.format('%s shard %s%s', p.relid::regclass, r.shardid,
                                                               CASE WHEN r.success THEN '' ELSE ' (' || r.result || ')' END),
                                             ', ' ORDER BY p.relid::text, r.shardid),
                       pg_catalog.count(r.shardid)
                  FROM warden.protected_tables p
                  JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid OPERATOR(pg_catalog.=) p.relid
                  JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) p.relid AND k.relkind OPERATOR(pg_catalog.=) 'r'
                 CROSS JOIN LATERAL pg_catalog.run_command_on_shards(p.relid,
                       $c$SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) '%s'::regclass
                            AND g.tgfoid OPERATOR(pg_catalog.=) 'warden._hold_guard_row()'::pg_catalog.regprocedure
                            AND g.tgenabled OPERATOR(pg_catalog.=) 'A'$c$) r
                 WHERE ($1 IS NULL OR p.relid OPERATOR(pg_catalog.=) $1 OR p.relid IN (SELECT x.relid FROM pg_catalog.pg_partition_tree($1) x))
                   AND NOT (r.success AND r.result OPERATOR(pg_catalog.=) '1')
            $q$ INTO missing, kept USING h.tbl;
            IF missing IS NOT NULL OR EXISTS (SELECT 1 FROM warden.protected_tables p WHERE p.relid IN
                                                (SELECT d.logicalrelid FROM pg_catalog.pg_dist_partition d)) THEN
                check_name := 'shard guards';
                ok := missing IS NULL;
                detail := CASE WHEN ok THEN 'every shard of every covered distributed table has the row guard enabled ALWAYS, and every node sees the holds'
                               ELSE 'row guard missing or not enabled ALWAYS on: ' || missing END;
                IF ok AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition d
                                       WHERE d.logicalrelid OPERATOR(pg_catalog.=) 'warden.holds'::regclass) THEN
                    ok := false;
                    detail := 'the holds are not replicated to the workers (SELECT * FROM warden.citus_setup();)';
                END IF;
                RETURN NEXT;
            END IF;
        END IF;
        check_name := 'rows';
        now_rows := warden._hold_rows(h.tenant, h.tbl, h.subject);
        SELECT pg_catalog.string_agg(pg_catalog.format('%s: %s of %s', b.key, coalesce(now_rows ->> b.key, 'table gone'), b.value),
                                     '; ' ORDER BY b.key) INTO missing
          FROM pg_catalog.jsonb_each_text(h.baseline) b
         WHERE coalesce((now_rows ->> b.key)::bigint, -1) OPERATOR(pg_catalog.<) b.value::bigint;
        ok := missing IS NULL;
        detail := CASE WHEN ok THEN pg_catalog.format('no table has fewer covered rows than when the hold was placed (%s)', h.baseline)
                       ELSE 'covered rows lost since the hold was placed: ' || missing END;
        RETURN NEXT;
        -- what the hold kept of rows that were updated since (0.7.0)
        check_name := 'preserved versions';
        IF pg_catalog.to_regclass('warden.preserved_versions') IS NULL THEN
            ok := false;
            detail := 'warden.preserved_versions is missing: updates of held rows are refused (ALTER EXTENSION warden UPDATE)';
        ELSE
            EXECUTE 'SELECT pg_catalog.count(*), pg_catalog.count(DISTINCT v.table_name)
                       FROM warden.preserved_versions v WHERE $1 OPERATOR(pg_catalog.=) ANY (v.holds)'
               INTO kept, kept_tables USING h.id;
            -- Citus: the versions of a shard's rows are kept on the shard's node
            unseen := 0;
            IF pg_catalog.to_regproc('pg_catalog.run_command_on_workers') IS NOT NULL
               AND pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NOT NULL THEN
                EXECUTE $q$SELECT coalesce(pg_catalog.sum(pg_catalog.split_part(w.result, ',', 1)::bigint) FILTER (WHERE w.success), 0),
                                  coalesce(pg_catalog.sum(pg_catalog.split_part(w.result, ',', 2)::bigint) FILTER (WHERE w.success), 0),
                                  pg_catalog.count(*) FILTER (WHERE NOT w.success)
                             FROM pg_catalog.run_command_on_workers(pg_catalog.format(
                                  'SELECT pg_catalog.count(*) || '','' || pg_catalog.count(DISTINCT v.table_name) FROM warden.preserved_versions v WHERE %L::uuid OPERATOR(pg_catalog.=) ANY (v.holds)', $1)) w$q$
                   INTO w_kept, w_tables, unseen USING h.id;
                kept := kept + w_kept;
                kept_tables := kept_tables + w_tables;
            END IF;
            ok := EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                           WHERE g.tgrelid OPERATOR(pg_catalog.=) 'warden.preserved_versions'::regclass
                             AND g.tgname OPERATOR(pg_catalog.=) 'warden_immutable' AND g.tgenabled OPERATOR(pg_catalog.=) 'A');
            detail := CASE WHEN NOT ok THEN 'the immutability trigger of warden.preserved_versions is missing or not enabled ALWAYS'
                           WHEN unseen OPERATOR(pg_catalog.>) 0 THEN pg_catalog.format('%s worker nodes could not be asked for the versions they keep', unseen)
                           ELSE pg_catalog.format('%s prior versions of updated rows kept (%s tables), append-only', kept, kept_tables) END;
            ok := ok AND unseen OPERATOR(pg_catalog.=) 0;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;


-- The audit trail of a Citus cluster: one chain per node, one verification and one trail for all.

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

-- Secrets replicated too (warden.citus_setup()): their policy in the direct form, which Citus accepts
-- on the tables it replicates (the planner support of tenant_with_level_text evaluates it once per
-- statement).
ALTER POLICY secrets_tenant ON warden.secrets
    USING (tenant OPERATOR(pg_catalog.=) warden.tenant_with_level_text('read'))
    WITH CHECK (tenant OPERATOR(pg_catalog.=) warden.tenant_with_level_text('admin'));
