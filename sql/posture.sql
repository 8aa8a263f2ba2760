-- Security posture (0.7.0): warden.security_lint() looks at the database as an auditor or an
-- attacker would and lists what is wrong, with the statement or step that fixes it. Read-only;
-- SECURITY DEFINER (it reads settings and catalogs an auditor may not), for superusers,
-- warden_admin and warden_auditor.

-- When the checks an auditor relies on last ran (warden.verify_audit(), warden.audit_digest()):
-- written by the sealing worker from the functions' notes, read by security_lint. Not audit events,
-- so that verifying or anchoring the chain does not change it.
CREATE TABLE warden.posture_checks (
    check_name   text PRIMARY KEY,
    last_at      timestamptz NOT NULL,
    last_result  text NOT NULL,
    last_by_role name NOT NULL
);
COMMENT ON TABLE warden.posture_checks IS 'When warden.verify_audit() and warden.audit_digest() last ran, and with what result (for warden.security_lint()).';
REVOKE ALL ON warden.posture_checks FROM PUBLIC;
GRANT SELECT ON warden.posture_checks TO warden_admin, warden_auditor;
SELECT pg_catalog.pg_extension_config_dump('warden.posture_checks', '');

-- The tables warden's policies are on (whatever their row level security state), with their
-- tenant column.
CREATE FUNCTION warden._lint_policed() RETURNS TABLE (relid oid, tenant_column name)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT ON (p.polrelid) p.polrelid, a.attname
      FROM pg_catalog.pg_policy p
      LEFT JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::regclass
            AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
            AND d.refobjid OPERATOR(pg_catalog.=) p.polrelid AND d.refobjsubid OPERATOR(pg_catalog.>) 0
      LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.refobjid AND a.attnum OPERATOR(pg_catalog.=) d.refobjsubid
     WHERE p.polname OPERATOR(pg_catalog.=) 'warden_select'
     ORDER BY p.polrelid
$$;
COMMENT ON FUNCTION warden._lint_policed() IS 'Internal: the tables with warden''s policies and their tenant column, for warden.security_lint().';

CREATE FUNCTION warden.security_lint()
RETURNS TABLE (rule text, severity text, object text, detail text, remediation text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
DECLARE
    tenant_names name[];
    rotation_age interval;
    check_age interval;
    secret text;
BEGIN
    -- tenant-like column names: the configured ones and every name protect_table was given
    SELECT pg_catalog.array_agg(DISTINCT x)::name[] INTO tenant_names
      FROM (SELECT pg_catalog.btrim(u) AS x
              FROM pg_catalog.unnest(pg_catalog.string_to_array(
                       coalesce(pg_catalog.current_setting('warden.lint_tenant_columns', true), ''), ',')) u
            UNION SELECT p.tenant_column::text FROM warden.protected_tables p) t
     WHERE x OPERATOR(pg_catalog.<>) '';
    -- a setting in seconds shows with a unit ('365d'), which interval input reads
    rotation_age := coalesce(pg_catalog.current_setting('warden.key_rotation_age', true), '365d')::interval;
    check_age := coalesce(pg_catalog.current_setting('warden.audit_check_age', true), '7d')::interval;

    -- 1. tables with a tenant-like column that warden does not protect
    RETURN QUERY
    SELECT 'unprotected_tenant_table', 'high', c.oid::regclass::text,
           pg_catalog.format('has a tenant column %I but no tenant isolation: every role with SELECT reads every tenant''s rows', a.attname),
           pg_catalog.format('SELECT warden.protect_table(%L, %L);', c.oid::regclass::text, a.attname)
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
           AND NOT a.attisdropped AND a.attname OPERATOR(pg_catalog.=) ANY (tenant_names)
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'warden')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
       AND NOT EXISTS (SELECT 1 FROM warden._lint_policed() w WHERE w.relid OPERATOR(pg_catalog.=) c.oid);

    -- 2. warden's policies without row level security enabled and forced
    RETURN QUERY
    SELECT 'rls_not_forced', 'critical', c.oid::regclass::text,
           CASE WHEN NOT c.relrowsecurity THEN 'row level security is disabled: warden''s policies are not applied'
                ELSE 'row level security is not forced: the table''s owner reads every tenant''s rows' END,
           pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;', c.oid::regclass::text)
      FROM warden._lint_policed() w JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) w.relid
     WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity);

    -- 3. other permissive policies, OR-ed with tenant isolation
    RETURN QUERY
    SELECT 'permissive_policy', 'high', c.oid::regclass::text,
           pg_catalog.format('permissive policy %I is OR-ed with tenant isolation and can widen it', p.polname),
           pg_catalog.format('DROP POLICY %I ON %s; -- or recreate it AS RESTRICTIVE', p.polname, c.oid::regclass::text)
      FROM warden._lint_policed() w
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) w.relid
      JOIN pg_catalog.pg_policy p ON p.polrelid OPERATOR(pg_catalog.=) c.oid
     WHERE p.polpermissive AND p.polname NOT LIKE 'warden\_%';

    -- 4, 5. views that read protected tables with their owner's rights when that owner bypasses
    -- row level security or owns the table; materialized views (no policy applies to their copy)
    RETURN QUERY
    SELECT DISTINCT CASE v.relkind WHEN 'm' THEN 'materialized_view_copies_protected' ELSE 'view_bypasses_rls' END,
           'high', v.oid::regclass::text,
           CASE v.relkind WHEN 'm' THEN pg_catalog.format('materialized view of protected %s: its rows are a copy no policy guards', t.oid::regclass::text)
                ELSE pg_catalog.format('reads protected %s with the rights of its owner %I, who %s', t.oid::regclass::text, o.rolname,
                         CASE WHEN o.rolsuper THEN 'is a superuser' WHEN o.rolbypassrls THEN 'bypasses row level security'
                              ELSE 'owns the table' END) END,
           CASE v.relkind WHEN 'm' THEN pg_catalog.format('DROP MATERIALIZED VIEW %s; -- or REVOKE SELECT ON it from the application roles', v.oid::regclass::text)
                ELSE pg_catalog.format('ALTER VIEW %s SET (security_invoker = on);', v.oid::regclass::text) END
      FROM pg_catalog.pg_class v
      JOIN pg_catalog.pg_rewrite r ON r.ev_class OPERATOR(pg_catalog.=) v.oid
      JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::regclass AND d.objid OPERATOR(pg_catalog.=) r.oid
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
      JOIN warden._lint_policed() w ON w.relid OPERATOR(pg_catalog.=) d.refobjid
      JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) w.relid
      JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) v.relowner
     WHERE v.oid OPERATOR(pg_catalog.<>) t.oid
       AND (v.relkind OPERATOR(pg_catalog.=) 'm'
            OR (v.relkind OPERATOR(pg_catalog.=) 'v'
                AND NOT coalesce('security_invoker=true' OPERATOR(pg_catalog.=) ANY (v.reloptions)
                                 OR 'security_invoker=on' OPERATOR(pg_catalog.=) ANY (v.reloptions), false)
                AND (o.rolsuper OR o.rolbypassrls OR o.oid OPERATOR(pg_catalog.=) t.relowner)));

    -- foreign tables with a tenant-like column: their rows live where warden's policies are not
    RETURN QUERY
    SELECT 'foreign_tenant_table', 'medium', c.oid::regclass::text,
           pg_catalog.format('foreign table with a tenant column %I: warden''s policies do not reach the data behind it', a.attname),
           'Protect the table at its source, and grant the foreign table only to roles that may read every tenant.'
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
           AND NOT a.attisdropped AND a.attname OPERATOR(pg_catalog.=) ANY (tenant_names)
     WHERE c.relkind OPERATOR(pg_catalog.=) 'f';

    -- 6. unique indexes without the tenant column: a duplicate-key error tells one tenant what another has
    RETURN QUERY
    SELECT 'unique_without_tenant', CASE WHEN i.indisprimary THEN 'low' ELSE 'medium' END, i.indexrelid::regclass::text,
           pg_catalog.format('unique index on %s without its tenant column %I: "duplicate key" tells one tenant that another already has the value',
                             c.oid::regclass::text, w.tenant_column),
           pg_catalog.format('CREATE UNIQUE INDEX ON %s (%I, ...); then drop %s', c.oid::regclass::text, w.tenant_column, i.indexrelid::regclass::text)
      FROM warden._lint_policed() w
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) w.relid
      JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) c.oid AND i.indisunique
      JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) w.tenant_column
     WHERE NOT (a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::int2[]));

    -- 7. TRUNCATE, REFERENCES, TRIGGER granted on protected tables
    RETURN QUERY
    SELECT 'dangerous_grant', 'high', c.oid::regclass::text,
           pg_catalog.format('%s granted to %s: %s', g.privilege_type,
                             CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END,
                             CASE g.privilege_type WHEN 'TRUNCATE' THEN 'it empties every tenant''s rows past row level security'
                                  WHEN 'REFERENCES' THEN 'a foreign key probes other tenants'' keys'
                                  ELSE 'a trigger runs with every row' END),
           pg_catalog.format('REVOKE %s ON %s FROM %s;', g.privilege_type, c.oid::regclass::text,
                             CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END)
      FROM warden._lint_policed() w
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) w.relid
      CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) g
      LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) g.grantee
     WHERE g.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER') AND g.grantee OPERATOR(pg_catalog.<>) c.relowner;

    -- 8. login roles that bypass row level security, besides the bootstrap superuser
    RETURN QUERY
    SELECT 'privileged_login', 'critical', pg_catalog.quote_ident(r.rolname),
           CASE WHEN r.rolsuper THEN 'a login role that is a superuser' ELSE 'a login role with BYPASSRLS' END
               || ': every tenant''s rows, whatever the policies',
           pg_catalog.format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS; -- or NOLOGIN, and use it only for migrations', r.rolname)
      FROM pg_catalog.pg_roles r
     WHERE r.rolcanlogin AND (r.rolsuper OR r.rolbypassrls) AND r.oid OPERATOR(pg_catalog.<>) 10;

    -- 9. SECURITY DEFINER functions without a fixed search_path; superuser-owned ones PUBLIC may run
    RETURN QUERY
    SELECT 'security_definer_search_path', 'high', p.oid::regprocedure::text,
           'SECURITY DEFINER without SET search_path: a caller''s objects can hijack it',
           pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', p.oid::regprocedure::text)
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
     WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) s WHERE s LIKE 'search\_path=%');
    RETURN QUERY
    SELECT 'security_definer_public', 'medium', p.oid::regprocedure::text,
           pg_catalog.format('SECURITY DEFINER, owned by the superuser %I, executable by PUBLIC', o.rolname),
           pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC; -- then GRANT it to the roles that need it', p.oid::regprocedure::text)
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
      JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) p.proowner
     WHERE p.prosecdef AND o.rolsuper AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'warden')
       AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE');

    -- 10. the HS256 secret
    secret := pg_catalog.current_setting('warden.jwt_secret', true);
    IF secret IS NULL OR pg_catalog.octet_length(secret) OPERATOR(pg_catalog.<) 32 THEN
        RETURN QUERY SELECT 'jwt_secret', 'critical', 'warden.jwt_secret',
            CASE WHEN coalesce(secret, '') OPERATOR(pg_catalog.=) '' THEN 'not set: authenticate and set_context refuse every context'
                 ELSE pg_catalog.format('%s bytes: at least 32 are needed (HS256 is only as strong as its key)', pg_catalog.octet_length(secret)) END,
            'ALTER SYSTEM SET warden.jwt_secret = ''<at least 32 random bytes>''; SELECT pg_reload_conf();';
    END IF;

    -- 11. identity providers without an audience
    RETURN QUERY
    SELECT 'issuer_without_audience', 'medium', i.issuer,
           'tokens of this issuer for any of its applications are accepted (no audience option)',
           pg_catalog.format('SELECT warden.register_issuer(%L, jwks, options || ''{"audience": "<your API>"}'') FROM warden.issuer_records WHERE issuer = %L;', i.issuer, i.issuer)
      FROM warden.issuers i WHERE NOT (i.options ? 'audience');

    -- 12. API keys unused past warden.key_stale_after; admin keys without expiry
    RETURN QUERY
    SELECT 'stale_api_key', 'medium', s.display_prefix,
           pg_catalog.format('%s key "%s" of tenant %s: %s', s.level, s.name, s.tenant, s.reason),
           pg_catalog.format('SELECT warden.revoke_api_key(%L, ''stale'');', s.id)
      FROM warden.stale_api_keys s;
    RETURN QUERY
    SELECT 'admin_key_without_expiry', 'medium', 'wdn_' || k.public_id,
           pg_catalog.format('admin key "%s" of tenant %s never expires', k.name, k.tenant),
           pg_catalog.format('Create a replacement with expires_at, then SELECT warden.revoke_api_key(%L, ''no expiry'');', k.id)
      FROM warden.api_key_records k
     WHERE k.level OPERATOR(pg_catalog.=) 'admin' AND k.expires_at IS NULL AND k.revoked_at IS NULL;

    -- 13. tenant keys not rotated within warden.key_rotation_age
    RETURN QUERY
    SELECT 'key_not_rotated', 'low', pg_catalog.format('%s/%s', k.tenant, k.name),
           pg_catalog.format('version %s created %s, older than warden.key_rotation_age', k.version, k.created_at),
           pg_catalog.format('SELECT warden.rotate_key(%L); -- in a context of tenant %s, then warden.reencrypt()', k.name, k.tenant)
      FROM warden.keyring k
     WHERE k.destroyed_at IS NULL
       AND k.version OPERATOR(pg_catalog.=) (SELECT pg_catalog.max(x.version) FROM warden.keyring x
                                              WHERE x.tenant OPERATOR(pg_catalog.=) k.tenant AND x.name OPERATOR(pg_catalog.=) k.name)
       AND k.created_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) rotation_age);

    -- 14. the audit chain verified, and its head anchored, within warden.audit_check_age
    RETURN QUERY
    SELECT 'audit_not_verified', CASE WHEN c.last_result OPERATOR(pg_catalog.=) 'broken' THEN 'critical' ELSE 'medium' END,
           'warden.verify_audit',
           CASE WHEN c.check_name IS NULL THEN 'the audit chain was never verified'
                WHEN c.last_result OPERATOR(pg_catalog.=) 'broken' THEN pg_catalog.format('the last verification (%s, by %s) found the chain broken', c.last_at, c.last_by_role)
                ELSE pg_catalog.format('last verified %s, longer ago than warden.audit_check_age', c.last_at) END,
           'SELECT * FROM warden.verify_audit(); -- as warden_auditor, from a scheduled job; investigate a broken chain'
      FROM (SELECT) one LEFT JOIN warden.posture_checks c ON c.check_name OPERATOR(pg_catalog.=) 'verify_audit'
     WHERE c.check_name IS NULL OR c.last_result OPERATOR(pg_catalog.=) 'broken'
        OR c.last_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) check_age);
    RETURN QUERY
    SELECT 'digest_not_anchored', 'medium', 'warden.audit_digest',
           CASE WHEN c.check_name IS NULL THEN 'no digest of the audit chain was ever taken to anchor outside the database'
                ELSE pg_catalog.format('the last digest was taken %s, longer ago than warden.audit_check_age', c.last_at) END,
           'SELECT * FROM warden.audit_digest(); -- and keep the result outside the database (a ticket, a WORM bucket)'
      FROM (SELECT) one LEFT JOIN warden.posture_checks c ON c.check_name OPERATOR(pg_catalog.=) 'audit_digest'
     WHERE c.check_name IS NULL OR c.last_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) check_age);

    -- 15. CONFIDENTIAL or PHI data without the protection and audit its level requires
    RETURN QUERY
    SELECT 'classification_not_compliant', 'high', c.target,
           pg_catalog.format('classified %s but %s', c.level,
                             pg_catalog.concat_ws(' and ', CASE WHEN NOT coalesce(c.protected, true) THEN 'not protected' END,
                                                  CASE WHEN NOT coalesce(c.audited, true) THEN 'not audited' END,
                                                  CASE WHEN c.target_type OPERATOR(pg_catalog.=) 'schema' THEN 'a table in it is not protected and audited' END)),
           pg_catalog.format('SELECT warden.protect_table(%L), warden.enable_audit(%L);', c.target, c.target)
      FROM warden.classifications c WHERE NOT c.compliant;

    -- 16. TLS configured but not required for a context
    IF pg_catalog.current_setting('ssl') OPERATOR(pg_catalog.=) 'on'
       AND coalesce(pg_catalog.current_setting('warden.require_tls', true), 'off') OPERATOR(pg_catalog.<>) 'on' THEN
        RETURN QUERY SELECT 'require_tls_off', 'medium', 'warden.require_tls',
            'the server offers TLS, but a context (a bearer token) may still be established without it',
            pg_catalog.format('ALTER DATABASE %I SET warden.require_tls = on;', pg_catalog.current_database());
    END IF;

    -- 17. statements logged while the log's redaction is off
    IF (pg_catalog.current_setting('log_statement') OPERATOR(pg_catalog.<>) 'none'
        OR pg_catalog.current_setting('log_min_duration_statement')::int OPERATOR(pg_catalog.>=) 0)
       AND coalesce(pg_catalog.current_setting('warden.log_redaction', true), 'on') OPERATOR(pg_catalog.<>) 'on' THEN
        RETURN QUERY SELECT 'log_redaction_off', 'high', 'warden.log_redaction',
            pg_catalog.format('statements are logged (log_statement = %s) and warden.log_redaction is off: tokens, keys, passwords and personal data reach the server log',
                              pg_catalog.current_setting('log_statement')),
            'ALTER SYSTEM RESET warden.log_redaction; SELECT pg_reload_conf();';
    END IF;
END
$$;
COMMENT ON FUNCTION warden.security_lint() IS 'What is wrong with this database''s security posture, rule by rule, with the fix (see README, "Posture and compliance").';
REVOKE EXECUTE ON FUNCTION warden.security_lint() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.security_lint() TO warden_admin, warden_auditor;

-- Metrics (0.7.0): what monitoring scrapes (contrib/postgres_exporter/queries.yaml reads it for
-- Debian's prometheus-postgres-exporter). Aggregates only; SECURITY DEFINER, so that a monitoring
-- role needs nothing but this.
CREATE FUNCTION warden._metrics() RETURNS TABLE (name text, labels jsonb, value double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
DECLARE
    q record;
BEGIN
    SELECT * INTO q FROM warden.audit_queue_status();
    RETURN QUERY VALUES
        ('warden_audit_pending_events', '{}'::jsonb, (SELECT pg_catalog.count(*) FROM warden.audit_pending)::float8),
        ('warden_audit_sealing_lag_seconds', '{}'::jsonb,
         coalesce((SELECT pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.min(p.occurred_at))
                     FROM warden.audit_pending p), 0)::float8),
        ('warden_audit_queue_overflowed_total', '{}'::jsonb, coalesce(q.overflowed, 0)::float8),
        ('warden_audit_unconfirmed_total', '{}'::jsonb, coalesce(q.unconfirmed, 0)::float8),
        ('warden_audit_unrecorded_total', '{}'::jsonb, coalesce(q.unrecorded, 0)::float8),
        ('warden_audit_sealing_failures_total', '{}'::jsonb, coalesce(q.sealing_failures, 0)::float8),
        ('warden_rls_coverage_percent', '{}'::jsonb, coalesce(warden.rls_coverage_percent(), 100)::float8);
    -- the last hour's events, by action and status (the time index keeps it cheap on a long trail)
    RETURN QUERY
    SELECT 'warden_audit_events_last_hour', pg_catalog.jsonb_build_object('action', e.action, 'status', e.status),
           pg_catalog.count(*)::float8
      FROM (SELECT a.action, a.status FROM warden.audit_events a
             WHERE a.occurred_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')
            UNION ALL SELECT p.action, p.status FROM warden.audit_pending p) e
     GROUP BY e.action, e.status;
    -- denied authentications, hold violations and PHI reads of the last hour (0 when none)
    RETURN QUERY
    SELECT m.metric, '{}'::jsonb, (SELECT pg_catalog.count(*) FROM
              (SELECT a.action, a.status FROM warden.audit_events a
                WHERE a.occurred_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')
               UNION ALL SELECT p.action, p.status FROM warden.audit_pending p) e
             WHERE e.action OPERATOR(pg_catalog.=) m.action
               AND (m.status IS NULL OR e.status OPERATOR(pg_catalog.=) m.status))::float8
      FROM (VALUES ('warden_denied_authentications_last_hour', 'authenticate', 'denied'),
                   ('warden_hold_violations_last_hour', 'hold_violation', NULL),
                   ('warden_phi_reads_last_hour', 'phi_read', NULL)) m(metric, action, status);
    -- security_lint's findings by severity (every severity, 0 when none)
    RETURN QUERY
    SELECT 'warden_lint_findings', pg_catalog.jsonb_build_object('severity', sv.s),
           (SELECT pg_catalog.count(*) FROM warden.security_lint() l WHERE l.severity OPERATOR(pg_catalog.=) sv.s)::float8
      FROM (VALUES ('critical'), ('high'), ('medium'), ('low')) sv(s);
END
$$;
COMMENT ON FUNCTION warden._metrics() IS 'Internal: the rows of warden.metrics.';
REVOKE EXECUTE ON FUNCTION warden._metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden._metrics() TO warden_auditor, pg_monitor;
CREATE VIEW warden.metrics AS SELECT m.name, m.labels, m.value FROM warden._metrics() m;
COMMENT ON VIEW warden.metrics IS 'Metrics for monitoring (name, labels, value): the audit backlog and lag, queue counters, the last hour''s events, denied authentications, hold violations, PHI reads, lint findings by severity, coverage.';
REVOKE ALL ON warden.metrics FROM PUBLIC;
GRANT SELECT ON warden.metrics TO warden_auditor, pg_monitor;

