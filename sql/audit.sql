-- warden audit trail: the sealed events, the events waiting to be sealed, purge checkpoints, the
-- triggers that keep them append-only, the auditor role and the views compliance staff read.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'warden_auditor') THEN
        CREATE ROLE warden_auditor NOLOGIN;
    END IF;
END
$$;

-- Trigger functions in C (src/audit/trigger.rs): they sit on every audited write.
CREATE FUNCTION warden._audit_row() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_audit_row';
CREATE FUNCTION warden._audit_truncate() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_audit_truncate';
CREATE FUNCTION warden._audit_immutable() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'warden_audit_immutable';

-- Sealed events: numbered without gaps and chained (hash = SHA-256(prev_hash || canonical event)).
-- Only the sealer inserts; nobody updates, deletes or truncates (see the triggers below).
CREATE TABLE warden.audit_events (
    id            bigint PRIMARY KEY,
    occurred_at   timestamptz NOT NULL,
    tenant        text,
    actor         text,
    action        text NOT NULL,
    resource_type text,
    resource_id   text,
    changes       jsonb,
    status        text NOT NULL CHECK (status IN ('success', 'denied', 'error')),
    context       jsonb,
    prev_hash     bytea NOT NULL,
    hash          bytea NOT NULL,
    -- the canonical serialization the hash covers: 2 (identifiers as text) since 0.6.0, 1 before
    serialization smallint NOT NULL DEFAULT 2 CHECK (serialization IN (1, 2))
);
COMMENT ON TABLE warden.audit_events IS 'The audit trail: sealed, hash-chained, append-only events. Read it through warden.audit_trail.';
CREATE INDEX audit_events_tenant_time ON warden.audit_events (tenant, occurred_at);
CREATE INDEX audit_events_actor_time ON warden.audit_events (actor, occurred_at);
CREATE INDEX audit_events_resource ON warden.audit_events (resource_type, resource_id, occurred_at);
CREATE INDEX audit_events_time ON warden.audit_events USING brin (occurred_at);

-- The content check of one event (its hash over prev_hash and its canonical serialization), for
-- warden.verify_audit(): PARALLEL SAFE, so that a parallel scan spreads the hashing over the cores.
CREATE FUNCTION warden._audit_event_ok(warden.audit_events) RETURNS boolean
    LANGUAGE c STRICT IMMUTABLE PARALLEL SAFE COST 1000
    AS 'MODULE_PATHNAME', 'warden_audit_event_ok';
REVOKE EXECUTE ON FUNCTION warden._audit_event_ok(warden.audit_events) FROM PUBLIC;

-- The same check by the event's columns, in table order (0.8.0; what verify_audit uses): the
-- executor passes each value where it lies in the row instead of copying the row into a composite
-- value first. Not STRICT: NULL columns are part of what is checked.
CREATE FUNCTION warden._audit_row_ok(bigint, timestamptz, text, text, text, text, text, jsonb, text, jsonb, bytea, bytea, smallint)
    RETURNS boolean
    LANGUAGE c IMMUTABLE PARALLEL SAFE COST 1000
    AS 'MODULE_PATHNAME', 'warden_audit_row_ok';
REVOKE EXECUTE ON FUNCTION warden._audit_row_ok(bigint, timestamptz, text, text, text, text, text, jsonb, text, jsonb, bytea, bytea, smallint) FROM PUBLIC;

-- Committed events waiting for the sealer: written by a direct heap insert (no index on purpose),
-- moved into audit_events by the sealing worker within moments.
CREATE TABLE warden.audit_pending (
    occurred_at   timestamptz NOT NULL,
    tenant        text,
    actor         text,
    action        text NOT NULL,
    resource_type text,
    resource_id   text,
    changes       jsonb,
    status        text NOT NULL,
    context       jsonb
);
-- Rows are deleted as fast as they are sealed: vacuum it often, so that its space is reused and the
-- table stays small.
ALTER TABLE warden.audit_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
                                      autovacuum_vacuum_cost_delay = 0);
COMMENT ON TABLE warden.audit_pending IS 'Committed audit events not yet sealed into warden.audit_events (normally empty within a second).';

-- Left by warden.purge_audit(): the chain now starts after event id, whose hash was hash.
CREATE TABLE warden.audit_checkpoints (
    id        bigint PRIMARY KEY,
    hash      bytea NOT NULL,
    purged    bigint NOT NULL,
    cutoff    timestamptz NOT NULL,
    purged_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- events a legal hold kept at or below id, and the digest of their ids and hashes
    retained  bigint NOT NULL DEFAULT 0,
    retained_digest bytea
);
COMMENT ON TABLE warden.audit_checkpoints IS 'Where the audit chain starts after warden.purge_audit(): the last purged event''s id and hash.';

-- Append-only, for every role (superusers too) and in every session_replication_role. Statement
-- triggers: a refused statement is refused before any row, and the sealer's and purge's deletes
-- pay one call, not one per row.
CREATE TRIGGER audit_events_immutable BEFORE UPDATE OR DELETE ON warden.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_immutable();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON warden.audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_immutable();
CREATE TRIGGER audit_pending_immutable BEFORE UPDATE OR DELETE ON warden.audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_immutable();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON warden.audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_immutable();
CREATE TRIGGER audit_checkpoints_immutable BEFORE UPDATE OR DELETE ON warden.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_immutable();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON warden.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_immutable();
ALTER TABLE warden.audit_events ENABLE ALWAYS TRIGGER audit_events_immutable,
    ENABLE ALWAYS TRIGGER audit_events_no_truncate;
ALTER TABLE warden.audit_pending ENABLE ALWAYS TRIGGER audit_pending_immutable,
    ENABLE ALWAYS TRIGGER audit_pending_no_truncate;
ALTER TABLE warden.audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_immutable,
    ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate;

-- Who reads what: warden_auditor every tenant's events; a tenant's admin (a context of level
-- admin) its own tenant's; everyone else nothing. Superusers bypass row level security.
ALTER TABLE warden.audit_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_auditor ON warden.audit_events FOR SELECT TO warden_auditor USING (true);
CREATE POLICY audit_events_tenant_admin ON warden.audit_events FOR SELECT TO PUBLIC
    USING (tenant OPERATOR(pg_catalog.=) (SELECT warden.tenant_with_level_text('admin')));
GRANT SELECT ON warden.audit_events TO PUBLIC;
GRANT SELECT ON warden.audit_checkpoints TO warden_auditor;
REVOKE ALL ON warden.audit_pending FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('warden.audit_events', '');
SELECT pg_catalog.pg_extension_config_dump('warden.audit_pending', '');
SELECT pg_catalog.pg_extension_config_dump('warden.audit_checkpoints', '');

-- The events with readable columns, for people. Row level security of audit_events applies to
-- the reader (security_invoker).
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

-- Tables under audit, from the catalogs (the triggers are dumped with the tables).
CREATE VIEW warden.audited_tables AS
SELECT c.oid::regclass AS relid,
       n.nspname AS schema_name,
       c.relname AS table_name,
       CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END AS kind,
       (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i
         WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_of,
       pg_catalog.array_remove(pg_catalog.string_to_array(
           pg_catalog.encode(t.tgargs, 'escape'), '\000'), '')::name[] AS redacted_columns,
       t.tgenabled <> 'D' AS enabled
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE t.tgname = 'warden_audit_row'
   AND t.tgfoid = 'warden._audit_row()'::pg_catalog.regprocedure;
COMMENT ON VIEW warden.audited_tables IS 'Tables whose changes are audit events (warden.enable_audit), with the columns whose values are never recorded. enabled is false after ALTER TABLE ... DISABLE TRIGGER.';
GRANT SELECT ON warden.audited_tables TO PUBLIC;

CREATE FUNCTION warden.log_event(action text, resource_type text, resource_id text,
                                 details jsonb DEFAULT '{}', status text DEFAULT 'success')
RETURNS void LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT warden._log_event(action, resource_type, resource_id, details::text, status) $$;
COMMENT ON FUNCTION warden.log_event(text, text, text, jsonb, text) IS 'Records an application or security event in the current context''s tenant (status success, denied or error).';

-- Events as jsonb in id order, with their hashes, for shipping to an external store. occurred_at
-- is written exactly as the canonical serialization writes it (UTC, microseconds).
CREATE FUNCTION warden.audit_export(after_id bigint, max_rows int DEFAULT 10000)
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

-- Counts by tenant, action and status; row level security decides which tenants a caller sees.
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
