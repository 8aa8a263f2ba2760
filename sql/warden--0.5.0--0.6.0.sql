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


-- Identifiers (issue 16): tenants and actors are identifiers (a uuid, a number or a provider's id)
-- stored as text; the audit trail records the serialization each event's hash covers (1 for the
-- events before this update, 2 after); tenant columns of type uuid, text, varchar, bigint and
-- integer. Everything that depends on the changed columns is dropped and created again.
DROP VIEW warden.audit_trail;
DROP POLICY audit_events_tenant_admin ON warden.audit_events;
DROP VIEW warden.legal_holds;
DROP VIEW warden.stale_api_keys;
DROP VIEW warden.api_keys;
DROP VIEW warden.keys;
DROP VIEW warden.secret_names;
DROP POLICY secrets_tenant ON warden.secrets;
DROP VIEW warden.classifications;
DROP FUNCTION warden.audit_summary(timestamptz, timestamptz);
DROP FUNCTION warden._hold_rows(uuid, regclass, uuid);
DROP FUNCTION warden._place_hold(text, text, uuid, regclass, uuid, uuid, name);
DROP FUNCTION warden.consent_history(uuid);

ALTER TABLE warden.audit_events ALTER COLUMN tenant TYPE text USING tenant::text,
                                ALTER COLUMN actor TYPE text USING actor::text;
ALTER TABLE warden.audit_events ADD COLUMN serialization smallint NOT NULL DEFAULT 1 CHECK (serialization IN (1, 2));
ALTER TABLE warden.audit_events ALTER COLUMN serialization SET DEFAULT 2;
ALTER TABLE warden.audit_pending ALTER COLUMN tenant TYPE text USING tenant::text,
                                 ALTER COLUMN actor TYPE text USING actor::text;
ALTER TABLE warden.holds ALTER COLUMN tenant TYPE text USING tenant::text,
                         ALTER COLUMN subject TYPE text USING subject::text,
                         ALTER COLUMN placed_by TYPE text USING placed_by::text;
ALTER TABLE warden.hold_releases ALTER COLUMN released_by TYPE text USING released_by::text;
ALTER TABLE warden.consents ALTER COLUMN tenant TYPE text USING tenant::text,
                            ALTER COLUMN subject TYPE text USING subject::text,
                            ALTER COLUMN recorded_by TYPE text USING recorded_by::text;
ALTER TABLE warden.deleted_accounts ALTER COLUMN actor TYPE text USING actor::text,
                                    ALTER COLUMN deleted_by TYPE text USING deleted_by::text;
ALTER TABLE warden.api_key_records ALTER COLUMN tenant TYPE text USING tenant::text,
                                   ALTER COLUMN created_by TYPE text USING created_by::text,
                                   ALTER COLUMN revoked_by TYPE text USING revoked_by::text;
ALTER TABLE warden.keyring ALTER COLUMN tenant TYPE text USING tenant::text,
                           ALTER COLUMN created_by TYPE text USING created_by::text,
                           ALTER COLUMN destroyed_by TYPE text USING destroyed_by::text;
ALTER TABLE warden.secrets ALTER COLUMN tenant TYPE text USING tenant::text,
                           ALTER COLUMN updated_by TYPE text USING updated_by::text;
ALTER TABLE warden.classification_rules ALTER COLUMN classified_by TYPE text USING classified_by::text;

-- functions generated from Rust: the identifier forms and the typed accessors
-- src/context.rs:743
-- warden::context::current_actor_id
-- requires:
--   planner::_context_support
CREATE  FUNCTION "current_actor_id"() RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'current_actor_id_wrapper';

-- src/context.rs:737
-- warden::context::current_tenant_id
-- requires:
--   planner::_context_support
CREATE  FUNCTION "current_tenant_id"() RETURNS TEXT /* Option < String > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'current_tenant_id_wrapper';

-- src/privacy/api.rs:831
-- warden::privacy::api::delete_account
CREATE  FUNCTION "delete_account"(
	"actor" TEXT, /* Option < & str > */
	"reason" TEXT /* Option < & str > */
) RETURNS jsonb /* Result < JsonB, ErrorReport > */
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'delete_account_id_wrapper';

-- src/privacy/api.rs:485
-- warden::privacy::api::erase_subject
CREATE  FUNCTION "erase_subject"(
	"subject" TEXT, /* Option < & str > */
	"reason" TEXT /* Option < & str > */
) RETURNS jsonb /* Result < JsonB, ErrorReport > */
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'erase_subject_id_wrapper';

-- src/privacy/api.rs:563
-- warden::privacy::api::export_subject
CREATE  FUNCTION "export_subject"(
	"subject" TEXT /* Option < & str > */
) RETURNS jsonb /* Result < JsonB, ErrorReport > */
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'export_subject_id_wrapper';

-- src/hold/api.rs:54
-- warden::hold::api::place_hold
CREATE  FUNCTION "place_hold"(
	"case_ref" TEXT, /* Option < & str > */
	"reason" TEXT, /* Option < & str > */
	"tenant" TEXT, /* Option < & str > */
	"tbl" regclass DEFAULT NULL, /* Option < PgRelation > */
	"subject" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS uuid /* Result < pgrx :: Uuid, ErrorReport > */
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'place_hold_ids_wrapper';

-- src/privacy/api.rs:646
-- warden::privacy::api::record_consent
CREATE  FUNCTION "record_consent"(
	"subject" TEXT, /* Option < & str > */
	"purpose" TEXT, /* Option < & str > */
	"granted" bool, /* Option < bool > */
	"source" TEXT /* Option < & str > */
) RETURNS bigint /* Result < i64, ErrorReport > */
VOLATILE PARALLEL UNSAFE 
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'record_consent_id_wrapper';

-- src/context.rs:626
-- warden::context::set_context
CREATE  FUNCTION "set_context"(
	"tenant" TEXT, /* Option < & str > */
	"actor" TEXT, /* Option < & str > */
	"level" TEXT /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'set_context_ids_wrapper';

-- src/context.rs:776
-- warden::context::tenant_with_level_bigint
-- requires:
--   planner::_context_support
CREATE  FUNCTION "tenant_with_level_bigint"(
	"level" TEXT /* & str */
) RETURNS bigint /* Result < Option < i64 > , ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_with_level_bigint_wrapper';

-- src/context.rs:782
-- warden::context::tenant_with_level_int
-- requires:
--   planner::_context_support
CREATE  FUNCTION "tenant_with_level_int"(
	"level" TEXT /* & str */
) RETURNS INT /* Result < Option < i32 > , ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_with_level_int_wrapper';

-- src/context.rs:769
-- warden::context::tenant_with_level_text
-- requires:
--   planner::_context_support
CREATE  FUNCTION "tenant_with_level_text"(
	"level" TEXT /* & str */
) RETURNS TEXT /* Result < Option < String > , ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_with_level_text_wrapper';

-- src/keys/api.rs:686
-- warden::keys::api::tenant_with_scope_bigint
-- requires:
--   planner::_context_support
CREATE  FUNCTION "tenant_with_scope_bigint"(
	"namespace" TEXT, /* & str */
	"resource_type" TEXT, /* & str */
	"level" TEXT /* & str */
) RETURNS bigint /* Result < Option < i64 > , ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_with_scope_bigint_wrapper';

-- src/keys/api.rs:696
-- warden::keys::api::tenant_with_scope_int
-- requires:
--   planner::_context_support
CREATE  FUNCTION "tenant_with_scope_int"(
	"namespace" TEXT, /* & str */
	"resource_type" TEXT, /* & str */
	"level" TEXT /* & str */
) RETURNS INT /* Result < Option < i32 > , ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_with_scope_int_wrapper';

-- src/keys/api.rs:676
-- warden::keys::api::tenant_with_scope_text
-- requires:
--   planner::_context_support
CREATE  FUNCTION "tenant_with_scope_text"(
	"namespace" TEXT, /* & str */
	"resource_type" TEXT, /* & str */
	"level" TEXT /* & str */
) RETURNS TEXT /* Result < Option < String > , ErrorReport > */
STRICT STABLE PARALLEL RESTRICTED SUPPORT "_context_support"
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tenant_with_scope_text_wrapper';

-- sql/audit.sql
CREATE POLICY audit_events_tenant_admin ON warden.audit_events FOR SELECT TO PUBLIC
    USING (tenant OPERATOR(pg_catalog.=) (SELECT warden.tenant_with_level_text('admin')));
CREATE VIEW warden.audit_trail WITH (security_invoker = true) AS
SELECT e.id,
       e.occurred_at,
       e.tenant,
       e.actor,
       e.action,
       e.resource_type,
       e.resource_id,
       e.status,
       e.changes,
       e.context ->> 'database_role'    AS database_role,
       e.context ->> 'application_name' AS application_name,
       e.context ->> 'client_addr'      AS client_addr,
       (e.context ->> 'backend_pid')::int     AS backend_pid,
       (e.context ->> 'transaction_id')::bigint AS transaction_id,
       e.context ->> 'via'              AS via,
       e.hash,
       e.serialization
  FROM warden.audit_events e;
COMMENT ON VIEW warden.audit_trail IS 'Audit events for people: tenant admins see their tenant''s, warden_auditor every tenant''s.';
GRANT SELECT ON warden.audit_trail TO PUBLIC;
CREATE OR REPLACE FUNCTION warden.audit_export(after_id bigint, max_rows int DEFAULT 10000)
RETURNS SETOF jsonb LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
               'id', e.id,
               'occurred_at', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'tenant', e.tenant, 'actor', e.actor, 'action', e.action,
               'resource_type', e.resource_type, 'resource_id', e.resource_id,
               'changes', e.changes, 'status', e.status, 'context', e.context,
               'prev_hash', encode(e.prev_hash, 'hex'), 'hash', encode(e.hash, 'hex'),
               'serialization', e.serialization)
      FROM warden.audit_events e
     WHERE e.id > coalesce(after_id, 0)
     ORDER BY e.id
     LIMIT greatest(coalesce(max_rows, 10000), 0)
$$;
COMMENT ON FUNCTION warden.audit_export(bigint, int) IS 'Events after after_id as jsonb, in id order, with prev_hash and hash (hex): verify the copy outside the database (README).';
CREATE FUNCTION warden.audit_summary("from" timestamptz, "to" timestamptz)
RETURNS TABLE (tenant text, action text, status text, events bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.tenant, e.action, e.status, count(*)
      FROM warden.audit_events e
     WHERE e.occurred_at >= "from" AND e.occurred_at < "to"
     GROUP BY 1, 2, 3
     ORDER BY 1, 2, 3
$$;
COMMENT ON FUNCTION warden.audit_summary(timestamptz, timestamptz) IS 'Events in [from, to) counted by tenant, action and status (the caller''s visible tenants).';

-- sql/hold.sql
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

-- sql/privacy.sql
CREATE FUNCTION warden.has_consent(subject text, purpose text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT c.granted FROM warden.consents c
                      WHERE c.tenant OPERATOR(pg_catalog.=) warden.current_tenant_id()
                        AND c.subject OPERATOR(pg_catalog.=) $1 AND c.purpose OPERATOR(pg_catalog.=) $2
                      ORDER BY c.id DESC LIMIT 1), false)
$$;
COMMENT ON FUNCTION warden.has_consent(text, text) IS 'Whether the subject''s latest consent for the purpose in the current tenant is a grant (false without one).';
CREATE OR REPLACE FUNCTION warden.has_consent(subject uuid, purpose text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$ SELECT warden.has_consent($1::text, $2) $$;
COMMENT ON FUNCTION warden.has_consent(uuid, text) IS 'warden.has_consent(text, text) for a uuid subject.';
CREATE FUNCTION warden.consent_history(subject text)
RETURNS TABLE (id bigint, purpose text, granted boolean, source text, recorded_at timestamptz, recorded_by text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.id, c.purpose, c.granted, c.source, c.recorded_at, c.recorded_by FROM warden.consents c
     WHERE c.tenant OPERATOR(pg_catalog.=) warden.current_tenant_id() AND c.subject OPERATOR(pg_catalog.=) $1
     ORDER BY c.id
$$;
COMMENT ON FUNCTION warden.consent_history(text) IS 'The subject''s consent and objection history in the current tenant, oldest first.';
CREATE FUNCTION warden.consent_history(subject uuid)
RETURNS TABLE (id bigint, purpose text, granted boolean, source text, recorded_at timestamptz, recorded_by text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM warden.consent_history($1::text) $$;
COMMENT ON FUNCTION warden.consent_history(uuid) IS 'warden.consent_history(text) for a uuid subject.';
CREATE OR REPLACE FUNCTION warden.register_memberships(tbl regclass, actor_column name DEFAULT 'actor_id',
                                            level_column name DEFAULT 'role')
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF tbl IS NULL OR actor_column IS NULL OR level_column IS NULL THEN
        RAISE EXCEPTION 'warden: tbl, actor_column and level_column must not be NULL'
            USING ERRCODE = '22023', HINT = 'SELECT warden.register_memberships(''memberships'', ''user_id'', ''role'');';
    END IF;
    IF NOT pg_catalog.pg_has_role((SELECT k.relowner FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) tbl), 'USAGE') THEN
        RAISE EXCEPTION 'warden: must be owner of table % to register it as the membership table', tbl
            USING ERRCODE = '42501', HINT = 'Run it as the table''s owner.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM warden.protected_tables p WHERE p.relid OPERATOR(pg_catalog.=) tbl) THEN
        RAISE EXCEPTION 'warden: table % is not protected', tbl
            USING ERRCODE = '55000', HINT = pg_catalog.format('Protect it first: SELECT warden.protect_table(%L);', tbl::text);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
                      AND a.attname OPERATOR(pg_catalog.=) actor_column AND NOT a.attisdropped
                      AND a.atttypid IN ('uuid'::regtype, 'text'::regtype, 'varchar'::regtype, 'bigint'::regtype, 'integer'::regtype)) THEN
        RAISE EXCEPTION 'warden: table % has no column "%" of type uuid, text, varchar, bigint or integer', tbl, actor_column
            USING ERRCODE = '42703', HINT = 'Name the column holding the member''s actor id (the sub of their tokens).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
                      AND a.attname OPERATOR(pg_catalog.=) level_column AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'warden: table % has no column "%"', tbl, level_column
            USING ERRCODE = '42703', HINT = 'Name the column holding the member''s level (read, write, delete or admin).';
    END IF;
    DELETE FROM warden.membership_tables m WHERE m.tbl OPERATOR(pg_catalog.=) register_memberships.tbl;
    INSERT INTO warden.membership_tables VALUES (tbl, actor_column, level_column);
END
$$;
COMMENT ON FUNCTION warden.register_memberships(regclass, name, name) IS 'Registers the application''s membership table (tenant, actor, level) for warden.delete_account()''s last-admin check.';

-- sql/keys.sql
CREATE VIEW warden.api_keys WITH (security_barrier) AS
SELECT k.id, k.tenant, k.name, k.public_id, 'wdn_' OPERATOR(pg_catalog.||) k.public_id AS display_prefix,
       k.level, k.scopes,
       CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'
            WHEN k.expires_at IS NOT NULL AND k.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN 'expired'
            ELSE 'active' END AS status,
       k.created_at, k.created_by, k.expires_at, k.last_used_at,
       k.revoked_at, k.revoked_by, k.revoke_reason,
       CASE WHEN warden.has_level('admin') OR pg_catalog.pg_has_role('warden_admin', 'MEMBER')
            THEN pg_catalog.encode(k.key_hash, 'hex') END AS key_hash
  FROM warden.api_key_records k
 WHERE k.tenant OPERATOR(pg_catalog.=) warden.current_tenant_id()
    OR pg_catalog.pg_has_role('warden_admin', 'MEMBER')
    OR pg_catalog.pg_has_role('warden_auditor', 'MEMBER');
COMMENT ON VIEW warden.api_keys IS 'API keys of the current tenant (all tenants for warden_admin and warden_auditor): never a plaintext key; the SHA-256 hash for admin level only.';
GRANT SELECT ON warden.api_keys TO PUBLIC;
CREATE VIEW warden.stale_api_keys WITH (security_barrier) AS
SELECT k.id, k.tenant, k.name, k.display_prefix, k.level, k.created_at, k.created_by, k.last_used_at,
       CASE WHEN k.last_used_at IS NULL THEN 'never used'
            ELSE 'unused since ' OPERATOR(pg_catalog.||) k.last_used_at::text END AS reason
  FROM warden.api_keys k
 WHERE k.status OPERATOR(pg_catalog.=) 'active'
   AND (k.last_used_at IS NULL
        OR k.last_used_at OPERATOR(pg_catalog.<)
           (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => warden._key_stale_after())));
COMMENT ON VIEW warden.stale_api_keys IS 'Active API keys never used, or unused for warden.key_stale_after.';
GRANT SELECT ON warden.stale_api_keys TO PUBLIC;

-- sql/crypto.sql
CREATE VIEW warden.keys WITH (security_barrier) AS
SELECT k.id, k.tenant, k.name, k.version, k.created_at, k.created_by,
       k.destroyed_at IS NOT NULL AS destroyed, k.destroyed_at, k.destroyed_by,
       k.version OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(l.version) FROM warden.keyring l
                                         WHERE l.id OPERATOR(pg_catalog.=) k.id) AS current
  FROM warden.keyring k
 WHERE k.tenant OPERATOR(pg_catalog.=) warden.current_tenant_id()
    OR pg_catalog.pg_has_role('warden_admin', 'MEMBER')
    OR pg_catalog.pg_has_role('warden_auditor', 'MEMBER');
COMMENT ON VIEW warden.keys IS 'The current tenant''s encryption keys and their versions (never key material).';
GRANT SELECT ON warden.keys TO PUBLIC;
CREATE POLICY secrets_tenant ON warden.secrets
    USING (tenant OPERATOR(pg_catalog.=) (SELECT warden.tenant_with_level_text('read')))
    WITH CHECK (tenant OPERATOR(pg_catalog.=) (SELECT warden.tenant_with_level_text('admin')));
CREATE VIEW warden.secret_names WITH (security_barrier) AS
SELECT s.name, s.updated_at, s.updated_by FROM warden.secrets s
 WHERE s.tenant OPERATOR(pg_catalog.=) warden.tenant_with_level_text('read');
COMMENT ON VIEW warden.secret_names IS 'Names of the current tenant''s secrets (warden.get_secret() reads a value).';
GRANT SELECT ON warden.secret_names TO PUBLIC;

-- sql/finalize.sql
CREATE OR REPLACE VIEW warden.protected_tables AS
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
ALTER FUNCTION warden.delete_account(text, text) SET row_security = on;
ALTER FUNCTION warden.register_memberships(regclass, name, name) SET row_security = on;
REVOKE EXECUTE ON FUNCTION warden.set_context(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.set_context(text, text, text) TO warden_context_setter;


-- Identity providers (issue 17, first part): the registry of issuers whose tokens warden verifies
-- with their own keys (sql/providers.sql), and register_issuer/unregister_issuer.
-- warden identity providers: the issuers whose tokens warden verifies with their own keys
-- (RS256, ES256, EdDSA). Written only by warden.register_issuer() and unregister_issuer(); read by
-- every authentication as warden_guard. Public keys and options are no secret: warden.issuers
-- shows them to everyone.
CREATE TABLE warden.issuer_records (
    issuer             text PRIMARY KEY CHECK (issuer OPERATOR(pg_catalog.<>) ''),
    jwks               jsonb NOT NULL,
    options            jsonb NOT NULL DEFAULT '{}',
    registered_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    registered_by      text,
    registered_by_role name NOT NULL DEFAULT CURRENT_USER
);
COMMENT ON TABLE warden.issuer_records IS 'Identity providers registered with warden.register_issuer(): their signing keys (JWKS) and options; see warden.issuers.';
REVOKE ALL ON warden.issuer_records FROM PUBLIC;
GRANT SELECT ON warden.issuer_records TO warden_guard;
SELECT pg_catalog.pg_extension_config_dump('warden.issuer_records', '');

CREATE VIEW warden.issuers AS
SELECT r.issuer,
       ARRAY(SELECT k.value ->> 'kid' FROM pg_catalog.jsonb_array_elements(r.jwks -> 'keys') k
              WHERE k.value ? 'kid' ORDER BY 1) AS key_ids,
       ARRAY(SELECT DISTINCT coalesce(k.value ->> 'alg',
                                      CASE k.value ->> 'kty' WHEN 'RSA' THEN 'RS256' WHEN 'EC' THEN 'ES256'
                                                             WHEN 'OKP' THEN 'EdDSA' END)
               FROM pg_catalog.jsonb_array_elements(r.jwks -> 'keys') k ORDER BY 1) AS algorithms,
       r.options, r.registered_at, r.registered_by, r.registered_by_role
  FROM warden.issuer_records r;
COMMENT ON VIEW warden.issuers IS 'Registered identity providers: their key ids, algorithms and options, and who registered them when.';
GRANT SELECT ON warden.issuers TO PUBLIC;

-- src/providers.rs:102
-- warden::providers::register_issuer
CREATE  FUNCTION "register_issuer"(
	"issuer" TEXT, /* Option < & str > */
	"jwks" jsonb, /* Option < JsonB > */
	"options" jsonb DEFAULT '{}' /* Option < JsonB > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'register_issuer_wrapper';

-- src/providers.rs:175
-- warden::providers::unregister_issuer
CREATE  FUNCTION "unregister_issuer"(
	"issuer" TEXT /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'unregister_issuer_wrapper';

-- warden.authenticate(token, tenant): the application names the tenant of a token that lists
-- several organizations (an issuer registered with the orgs option).
DROP FUNCTION warden.authenticate(text);
-- warden::context::authenticate
CREATE  FUNCTION "authenticate"(
	"token" TEXT, /* Option < & str > */
	"tenant" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'authenticate_in_wrapper';

-- Sign-out everywhere: warden.revoke_tokens() records that the tokens of an actor issued before a
-- moment are refused, in one tenant (an admin of that tenant revoked them) or in every tenant
-- (tenant NULL: the actor themself, warden_admin or a superuser). Read by every authentication as
-- warden_guard; API keys are not tokens and are not affected.
CREATE TABLE warden.token_revocations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor           text NOT NULL CHECK (actor OPERATOR(pg_catalog.<>) ''),
    tenant          text,
    issued_before   timestamptz NOT NULL,
    revoked_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    revoked_by      text,
    revoked_by_role name NOT NULL DEFAULT CURRENT_USER
);
COMMENT ON TABLE warden.token_revocations IS 'Tokens revoked by warden.revoke_tokens(): an actor''s tokens issued before issued_before are refused (in tenant, or everywhere when it is NULL).';
REVOKE ALL ON warden.token_revocations FROM PUBLIC;
GRANT SELECT ON warden.token_revocations TO warden_guard;
SELECT pg_catalog.pg_extension_config_dump('warden.token_revocations', '');
SELECT pg_catalog.pg_extension_config_dump('warden.token_revocations_id_seq', '');
-- warden::providers::revoke_tokens
CREATE  FUNCTION "revoke_tokens"(
	"actor" TEXT, /* Option < & str > */
	"issued_before" timestamp with time zone DEFAULT now() /* Option < pgrx::datum::TimestampWithTimeZone > */
) RETURNS VOID /* Result < (), ErrorReport > */
VOLATILE PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'revoke_tokens_wrapper';
