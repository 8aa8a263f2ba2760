-- warden 0.6.0 -> 0.7.0. tests/ops/upgrade.sh proves the result matches a fresh install.
--
-- Evidence that stays evidence (issue 18): a hold keeps rows and their content. The prior version of
-- every held row an UPDATE changes is kept in warden.preserved_versions; warden.discard_preserved()
-- removes them once their holds are released; verify_holds() reports what each hold kept. (The other
-- parts of the issue, DDL on warden's tables and DROP DATABASE under a hold, the PHI read of COPY and
-- the server log's redaction, live in the library and need no SQL.)

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

CREATE FUNCTION warden."discard_preserved"(
	"hold" uuid /* Option < pgrx :: Uuid > */
) RETURNS bigint /* Result < i64, ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'discard_preserved_wrapper';

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
            ok := EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                           WHERE g.tgrelid OPERATOR(pg_catalog.=) 'warden.preserved_versions'::regclass
                             AND g.tgname OPERATOR(pg_catalog.=) 'warden_immutable' AND g.tgenabled OPERATOR(pg_catalog.=) 'A');
            detail := CASE WHEN ok THEN pg_catalog.format('%s prior versions of updated rows kept (%s tables), append-only', kept, kept_tables)
                           ELSE 'the immutability trigger of warden.preserved_versions is missing or not enabled ALWAYS' END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
