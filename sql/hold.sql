-- warden legal holds: the holds, their releases, the personal-data registry the subject holds
-- need, and who may see them. The guards themselves are C triggers (src/hold/guard.rs) that
-- warden.protect_table() puts on every protected table, and checks in the utility hook.

DO $$
BEGIN
    -- Members place and release holds for any tenant (a tenant's admin level: its own tenant only).
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'warden_admin') THEN
        CREATE ROLE warden_admin NOLOGIN;
    END IF;
    -- The role the guards read the holds as: nobody logs in as it; revoking its SELECT on
    -- warden.holds makes every guarded destructive statement fail (fail closed).
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'warden_guard') THEN
        CREATE ROLE warden_guard NOLOGIN;
    END IF;
END
$$;

-- Append-only: a hold is a row here, its release a row in warden.hold_releases. Written only by
-- warden.place_hold() / release_hold(); no role has INSERT, UPDATE or DELETE on either table, and
-- a trigger that fires in every replication mode refuses UPDATE, DELETE and TRUNCATE to all.
CREATE TABLE warden.holds (
    id             uuid PRIMARY KEY,
    case_ref       text NOT NULL CHECK (case_ref OPERATOR(pg_catalog.<>) ''),
    reason         text NOT NULL,
    tenant         text NOT NULL,
    tbl            regclass,
    table_name     text,
    subject        text,
    placed_at      timestamptz NOT NULL,
    placed_by      text,
    placed_by_role name NOT NULL,
    -- rows covered when the hold was placed, per table: what verify_holds() compares against
    baseline       jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE warden.holds IS 'Legal holds (append-only; see warden.legal_holds). Written only by warden.place_hold().';

CREATE TABLE warden.hold_releases (
    -- a hold of warden.holds (release_hold checks it; no foreign key since 0.9.0, so that Citus can
    -- replicate both tables, warden.citus_setup())
    hold            uuid PRIMARY KEY,
    reason          text NOT NULL CHECK (reason OPERATOR(pg_catalog.<>) ''),
    released_at     timestamptz NOT NULL,
    released_by     text,
    released_by_role name NOT NULL
);
COMMENT ON TABLE warden.hold_releases IS 'Releases of legal holds (append-only). Written only by warden.release_hold().';

-- Which columns of which tables hold a data subject's personal data, and how to anonymize them.
CREATE TABLE warden.personal_data (
    tbl            regclass NOT NULL,
    column_name    name NOT NULL,
    subject_column name NOT NULL,
    method         text NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tbl, column_name)
);
COMMENT ON TABLE warden.personal_data IS 'Personal data registered with warden.register_personal_data(): column, the column naming the data subject, anonymization method.';

CREATE FUNCTION warden._hold_immutable() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_hold_immutable';
CREATE TRIGGER warden_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON warden.holds
    FOR EACH STATEMENT EXECUTE FUNCTION warden._hold_immutable();
CREATE TRIGGER warden_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON warden.hold_releases
    FOR EACH STATEMENT EXECUTE FUNCTION warden._hold_immutable();
ALTER TABLE warden.holds ENABLE ALWAYS TRIGGER warden_immutable;
ALTER TABLE warden.hold_releases ENABLE ALWAYS TRIGGER warden_immutable;

-- With Citus, warden.citus_setup() makes these tables reference tables (a copy on every node, for
-- the guards on the shards); Citus copies this trigger to every copy, so a write arriving from the
-- coordinator invalidates each node's cached holds and registry as a local write does.
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

-- The guards on protected tables (installed by warden.protect_table()).
CREATE FUNCTION warden._hold_guard_row() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_hold_guard_row';
CREATE FUNCTION warden._hold_guard_statement() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_hold_guard_statement';

REVOKE ALL ON warden.holds, warden.hold_releases, warden.personal_data FROM PUBLIC;
GRANT SELECT ON warden.holds, warden.hold_releases, warden.personal_data TO warden_guard;
GRANT SELECT ON warden.personal_data TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('warden.holds', '');
SELECT pg_catalog.pg_extension_config_dump('warden.hold_releases', '');
SELECT pg_catalog.pg_extension_config_dump('warden.personal_data', '');

-- Active and released holds, for warden_admin and warden_auditor members (every tenant) and a
-- tenant's admin level (its own). Not security_invoker: the tables themselves are closed.
CREATE VIEW warden.legal_holds WITH (security_barrier) AS
SELECT h.id, h.case_ref, h.reason, h.tenant, h.tbl, h.table_name, h.subject,
       CASE WHEN h.tbl IS NOT NULL AND h.subject IS NOT NULL THEN 'table subject'
            WHEN h.tbl IS NOT NULL THEN 'table'
            WHEN h.subject IS NOT NULL THEN 'subject'
            ELSE 'tenant' END AS scope,
       r.hold IS NULL AS active,
       h.placed_at, h.placed_by, h.placed_by_role,
       r.released_at, r.released_by, r.released_by_role, r.reason AS release_reason
  FROM warden.holds h
  LEFT JOIN warden.hold_releases r ON r.hold OPERATOR(pg_catalog.=) h.id
 WHERE pg_catalog.pg_has_role('warden_admin', 'MEMBER')
    OR pg_catalog.pg_has_role('warden_auditor', 'MEMBER')
    OR h.tenant OPERATOR(pg_catalog.=) warden.tenant_with_level_text('admin');
COMMENT ON VIEW warden.legal_holds IS 'Legal holds, active and released, with who placed and released them and when.';
GRANT SELECT ON warden.legal_holds TO PUBLIC;

-- Installs or repairs the guards on one table of a protected tree (warden.protect_table() and
-- warden.place_hold() call it): BEFORE DELETE OR TRUNCATE per statement on every table, BEFORE
-- DELETE OR UPDATE per row on leaf tables, both enabled ALWAYS. On a Citus distributed table,
-- with citus.enable_unsafe_triggers on for these statements only: Citus then copies the row
-- guard to every shard (the statement guard stays on the coordinator's table, where TRUNCATE and
-- DROP are checked; the row guard applies its rule on the shards).
CREATE FUNCTION warden._install_hold_guards(tbl regclass, tenant_column name) RETURNS void
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

-- The subject column registered for a relation or its nearest registered ancestor.
CREATE FUNCTION warden._subject_column(tbl regclass) RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.subject_column FROM warden.personal_data d
      JOIN (SELECT tbl::oid UNION ALL SELECT x.relid FROM pg_catalog.pg_partition_ancestors(tbl) x) a(relid)
        ON a.relid OPERATOR(pg_catalog.=) d.tbl
     LIMIT 1
$$;

-- Whether identifier id names a value of type typ exactly (a tenant or subject column of that
-- type): any text for text and varchar; the canonical form for uuid, bigint and integer (so '042'
-- is not 42, and 'org_2abc' no bigint).
CREATE FUNCTION warden._ident_fits(id text, typ regtype) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ok boolean;
BEGIN
    IF typ IN ('text'::regtype, 'varchar'::regtype) THEN
        RETURN true;
    END IF;
    IF typ NOT IN ('uuid'::regtype, 'bigint'::regtype, 'integer'::regtype) THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('SELECT $1::%s::text OPERATOR(pg_catalog.=) $1', typ) INTO ok USING id;
    RETURN ok;
EXCEPTION WHEN data_exception THEN
    RETURN false;
END
$$;

-- The rows a hold covers now, per leaf table: {"schema.table": count}. Runs with its caller's
-- privileges: warden.place_hold() and warden.verify_holds() call it as the holds' owner. The
-- tenant and subject are identifiers compared with each table's columns in their own types.
CREATE FUNCTION warden._hold_rows(p_tenant text, p_tbl regclass, p_subject text) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r      record;
    n      bigint;
    subcol name;
    ttyp   regtype;
    styp   regtype;
    out    jsonb := '{}';
BEGIN
    FOR r IN SELECT p.relid, p.tenant_column FROM warden.protected_tables p
              JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) p.relid
             WHERE k.relkind OPERATOR(pg_catalog.=) 'r'
               AND (p_tbl IS NULL OR p.relid OPERATOR(pg_catalog.=) p_tbl OR p.relid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(p_tbl) t))
             ORDER BY p.relid::text
    LOOP
        subcol := warden._subject_column(r.relid);
        CONTINUE WHEN p_subject IS NOT NULL AND subcol IS NULL;
        SELECT a.atttypid INTO ttyp FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) r.relid AND a.attname OPERATOR(pg_catalog.=) r.tenant_column;
        IF NOT warden._ident_fits(p_tenant, ttyp) THEN
            n := 0;
        ELSIF p_subject IS NULL THEN
            EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s WHERE %I OPERATOR(pg_catalog.=) $1::%s',
                                      r.relid, r.tenant_column, ttyp) INTO n USING p_tenant;
        ELSE
            SELECT a.atttypid INTO styp FROM pg_catalog.pg_attribute a
             WHERE a.attrelid OPERATOR(pg_catalog.=) r.relid AND a.attname OPERATOR(pg_catalog.=) subcol;
            IF NOT warden._ident_fits(p_subject, styp) THEN
                n := 0;
            ELSE
                EXECUTE pg_catalog.format('SELECT count(*) FROM ONLY %s WHERE %I OPERATOR(pg_catalog.=) $1::%s AND %I OPERATOR(pg_catalog.=) $2::%s',
                                          r.relid, r.tenant_column, ttyp, subcol, styp) INTO n USING p_tenant, p_subject;
            END IF;
        END IF;
        out := out OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(r.relid::text, n);
    END LOOP;
    RETURN out;
END
$$;

-- warden.place_hold()'s privileged part, called as the holds' owner once the caller is
-- authorized: repairs the guards of every table the hold covers, counts the covered rows, stores.
CREATE FUNCTION warden._place_hold(p_case_ref text, p_reason text, p_tenant text, p_tbl regclass,
                                   p_subject text, p_actor text, p_role name)
RETURNS TABLE (id uuid, baseline jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id   uuid := pg_catalog.gen_random_uuid();
    v_base jsonb;
    r      record;
BEGIN
    FOR r IN SELECT p.relid, p.tenant_column FROM warden.protected_tables p
             WHERE p_tbl IS NULL OR p.relid OPERATOR(pg_catalog.=) p_tbl OR p.relid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(p_tbl) t)
    LOOP
        PERFORM warden._install_hold_guards(r.relid, r.tenant_column);
    END LOOP;
    v_base := warden._hold_rows(p_tenant, p_tbl, p_subject);
    INSERT INTO warden.holds (id, case_ref, reason, tenant, tbl, table_name, subject, placed_at, placed_by,
                              placed_by_role, baseline)
    VALUES (v_id, p_case_ref, p_reason, p_tenant, p_tbl, p_tbl::text, p_subject, pg_catalog.now(), p_actor,
            p_role, v_base);
    RETURN QUERY SELECT v_id, v_base;
END
$$;

REVOKE EXECUTE ON FUNCTION warden._hold_rows(text, regclass, text),
    warden._place_hold(text, text, text, regclass, text, text, name) FROM PUBLIC;

-- What an auditor runs to learn whether any held data or any hold was lost, including through
-- the ways a superuser has around the guards (see README, "Legal holds").
CREATE FUNCTION warden.verify_holds()
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
COMMENT ON FUNCTION warden.verify_holds() IS 'Whether any hold, guard or held row was lost: one row per check, ok false with the detail when something is wrong.';
REVOKE EXECUTE ON FUNCTION warden.verify_holds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.verify_holds() TO warden_admin, warden_auditor;

-- The digest of the events at or below a purge checkpoint (those a legal hold kept): sha256 over
-- "id:hex(hash)" joined by commas in id order. warden.purge_audit() stores it in the checkpoint,
-- warden.verify_audit() recomputes it.
CREATE FUNCTION warden._retained_digest(through bigint) RETURNS bytea
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(coalesce(pg_catalog.string_agg(
               e.id::text || ':' || pg_catalog.encode(e.hash, 'hex'), ',' ORDER BY e.id), ''), 'UTF8'))
      FROM warden.audit_events e WHERE e.id OPERATOR(pg_catalog.<=) through
$$;
REVOKE EXECUTE ON FUNCTION warden._retained_digest(bigint) FROM PUBLIC;

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
