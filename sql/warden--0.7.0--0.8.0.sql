-- warden 0.7.0 -> 0.8.0. tests/ops/upgrade.sh proves the result matches a fresh install.
--
-- Compliance evidence (issue 20): warden.compliance_report() and warden.compliance_report_markdown().
-- security_lint() and warden.metrics run without JIT (compiling their catalog queries cost more
-- than running them).
ALTER FUNCTION warden.security_lint() SET jit = off;
ALTER FUNCTION warden._metrics() SET jit = off;

-- Verification at a higher rate (issue 21): the content check by the event's columns, the JSON
-- serialized from jsonb's binary form.
-- The same check by the event's columns, in table order (0.8.0; what verify_audit uses): the
-- executor passes each value where it lies in the row instead of copying the row into a composite
-- value first. Not STRICT: NULL columns are part of what is checked.
CREATE FUNCTION warden._audit_row_ok(bigint, timestamptz, text, text, text, text, text, jsonb, text, jsonb, bytea, bytea, smallint)
    RETURNS boolean
    LANGUAGE c IMMUTABLE PARALLEL SAFE COST 1000
    AS 'MODULE_PATHNAME', 'warden_audit_row_ok';
REVOKE EXECUTE ON FUNCTION warden._audit_row_ok(bigint, timestamptz, text, text, text, text, text, jsonb, text, jsonb, bytea, bytea, smallint) FROM PUBLIC;

CREATE FUNCTION warden.compliance_report(
    period_from timestamptz DEFAULT (pg_catalog.now() - interval '30 days'),
    period_to timestamptz DEFAULT pg_catalog.now())
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
DECLARE
    check_age interval;
    findings jsonb;
    by_rule jsonb;
    ev jsonb;
    coverage jsonb;
    access jsonb;
    credentials jsonb;
    transport jsonb;
    logging jsonb;
    audit jsonb;
    classified jsonb;
    crypto jsonb;
    holds jsonb;
    privacy jsonb;
    q record;
    controls jsonb := '[]';
    c jsonb;
    -- gaps several controls share
    coverage_gap text;
    classification_gap text;
    audit_gap text;
    -- findings of the given lint rules
    rules_of text[];
BEGIN
    IF period_from IS NULL OR period_to IS NULL OR period_from >= period_to THEN
        RAISE EXCEPTION 'warden: the report period must be a non-empty interval (from % to %)', period_from, period_to
            USING ERRCODE = '22023',
                  HINT = 'Call warden.compliance_report(period_from, period_to) with period_from before period_to, or with no arguments for the last 30 days.';
    END IF;
    check_age := coalesce(current_setting('warden.audit_check_age', true), '7d')::interval;

    SELECT coalesce(jsonb_agg(jsonb_build_object('rule', l.rule, 'severity', l.severity, 'object', l.object,
                                                 'detail', l.detail, 'remediation', l.remediation)
                              ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], l.severity), l.rule, l.object), '[]')
      INTO findings FROM warden.security_lint() l;
    -- the findings by rule, for the controls: how many, the first objects and a remediation
    SELECT coalesce(jsonb_agg(jsonb_build_object('rule', r.rule, 'severity', r.severity, 'count', r.n,
                                                 'objects', r.objects, 'remediation', r.remediation)
                              ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], r.severity), r.rule), '[]')
      INTO by_rule
      FROM (SELECT f ->> 'rule' AS rule, f ->> 'severity' AS severity, count(*) AS n,
                   (array_agg(f ->> 'object' ORDER BY f ->> 'object'))[1:10] AS objects,
                   min(f ->> 'remediation') AS remediation
              FROM jsonb_array_elements(findings) f GROUP BY 1, 2) r;

    -- the period's events, sealed and still queued
    SELECT jsonb_build_object(
               'total', count(*),
               'denied', count(*) FILTER (WHERE e.status = 'denied'),
               'errors', count(*) FILTER (WHERE e.status = 'error'),
               'denied_authentications', count(*) FILTER (WHERE e.action = 'authenticate' AND e.status = 'denied'),
               'hold_violations', count(*) FILTER (WHERE e.action = 'hold_violation'),
               'phi_reads', count(*) FILTER (WHERE e.action = 'phi_read'),
               'erasures', count(*) FILTER (WHERE e.action = 'erase_subject' AND e.status = 'success'),
               'exports', count(*) FILTER (WHERE e.action = 'export_subject' AND e.status = 'success'),
               'deleted_accounts', count(*) FILTER (WHERE e.action = 'delete_account' AND e.status = 'success'),
               'holds_placed', count(*) FILTER (WHERE e.action = 'place_hold' AND e.status = 'success'),
               'holds_released', count(*) FILTER (WHERE e.action = 'release_hold' AND e.status = 'success'),
               'api_keys_created', count(*) FILTER (WHERE e.action = 'create_api_key' AND e.status = 'success'),
               'keys_rotated', count(*) FILTER (WHERE e.action = 'rotate_key' AND e.status = 'success'),
               'keys_destroyed', count(*) FILTER (WHERE e.action = 'destroy_key' AND e.status = 'success'),
               'privilege_changes', count(*) FILTER (WHERE e.action IN ('grant', 'revoke', 'grant_role', 'revoke_role', 'create_role', 'alter_role', 'drop_role')),
               'policy_changes', count(*) FILTER (WHERE e.action IN ('create_policy', 'alter_policy', 'drop_policy', 'alter_row_security', 'disable_trigger', 'protect_table', 'unprotect_table', 'enable_audit', 'disable_audit', 'purge_audit')))
      INTO ev
      FROM (SELECT a.action, a.status FROM warden.audit_events a WHERE a.occurred_at >= period_from AND a.occurred_at < period_to
            UNION ALL
            SELECT p.action, p.status FROM warden.audit_pending p WHERE p.occurred_at >= period_from AND p.occurred_at < period_to) e;

    SELECT jsonb_build_object(
               'tables', count(*),
               'protected', count(*) FILTER (WHERE r.protected),
               'percent', coalesce(round(100.0 * count(*) FILTER (WHERE r.protected) / NULLIF(count(*), 0), 1), 100),
               'unprotected_count', count(*) FILTER (WHERE NOT r.protected),
               -- the first 100 (warden.rls_coverage has them all)
               'unprotected', coalesce((jsonb_path_query_array(
                                  jsonb_agg(jsonb_build_object('table', r.relid::text, 'issue', r.problem) ORDER BY r.relid::text)
                                  FILTER (WHERE NOT r.protected), '$[0 to 99]')), '[]'))
      INTO coverage FROM warden.rls_coverage r;

    SELECT jsonb_build_object(
               'privileged_logins', coalesce((SELECT jsonb_agg(r.rolname ORDER BY r.rolname) FROM pg_roles r
                                               WHERE r.rolcanlogin AND (r.rolsuper OR r.rolbypassrls)), '[]'),
               'warden_admin_members', coalesce((SELECT jsonb_agg(r.rolname ORDER BY r.rolname) FROM pg_roles r
                                                  WHERE r.rolcanlogin AND NOT r.rolsuper AND pg_has_role(r.oid, 'warden_admin', 'MEMBER')), '[]'),
               'warden_auditor_members', coalesce((SELECT jsonb_agg(r.rolname ORDER BY r.rolname) FROM pg_roles r
                                                    WHERE r.rolcanlogin AND NOT r.rolsuper AND pg_has_role(r.oid, 'warden_auditor', 'MEMBER')), '[]'),
               'privilege_changes_in_period', ev -> 'privilege_changes',
               'policy_changes_in_period', ev -> 'policy_changes')
      INTO access;

    SELECT jsonb_build_object(
               'jwt_secret_bytes', coalesce(octet_length(current_setting('warden.jwt_secret', true)), 0),
               'issuers', (SELECT count(*) FROM warden.issuer_records),
               'issuers_without_audience', (SELECT count(*) FROM warden.issuer_records i WHERE NOT (i.options ? 'audience')),
               'api_keys_active', coalesce((SELECT jsonb_object_agg(k.level, k.n) FROM
                                            (SELECT level, count(*) AS n FROM warden.api_key_records
                                              WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                                              GROUP BY level) k), '{}'),
               'api_keys_revoked_in_period', (SELECT count(*) FROM warden.api_key_records
                                               WHERE revoked_at >= period_from AND revoked_at < period_to),
               'api_keys_stale', (SELECT count(*) FROM warden.stale_api_keys),
               'admin_keys_without_expiry', (SELECT count(*) FROM warden.api_key_records
                                              WHERE level = 'admin' AND expires_at IS NULL AND revoked_at IS NULL),
               'token_revocations', (SELECT count(*) FROM warden.token_revocations),
               'deleted_accounts', (SELECT count(*) FROM warden.deleted_accounts),
               'denied_authentications_in_period', ev -> 'denied_authentications')
      INTO credentials;

    SELECT jsonb_build_object(
               'ssl', current_setting('ssl'),
               'ssl_min_protocol_version', current_setting('ssl_min_protocol_version'),
               'require_tls', coalesce(current_setting('warden.require_tls', true), 'off'),
               'password_encryption', current_setting('password_encryption'))
      INTO transport;

    SELECT jsonb_build_object(
               'log_statement', current_setting('log_statement'),
               'log_min_duration_statement', current_setting('log_min_duration_statement'),
               'log_redaction', coalesce(current_setting('warden.log_redaction', true), 'on'))
      INTO logging;

    SELECT * INTO q FROM warden.audit_queue_status();
    SELECT jsonb_build_object(
               'audited_tables', (SELECT count(*) FROM warden.audited_tables WHERE enabled),
               'events_total', (SELECT count(*) FROM warden.audit_events),
               'events_pending', (SELECT count(*) FROM warden.audit_pending),
               'events_in_period', ev,
               'last_verification', coalesce((SELECT jsonb_build_object('at', p.last_at, 'result', p.last_result, 'by', p.last_by_role,
                                                                        'within_check_age', p.last_at >= now() - check_age)
                                                FROM warden.posture_checks p WHERE p.check_name = 'verify_audit'), '"never"'),
               'last_digest', coalesce((SELECT jsonb_build_object('at', p.last_at, 'by', p.last_by_role,
                                                                  'within_check_age', p.last_at >= now() - check_age)
                                          FROM warden.posture_checks p WHERE p.check_name = 'audit_digest'), '"never"'),
               'audit_check_age', check_age::text,
               'queue_overflowed', coalesce(q.overflowed, 0),
               'events_unconfirmed', coalesce(q.unconfirmed, 0),
               'events_unrecorded', coalesce(q.unrecorded, 0),
               'sealing_failures', coalesce(q.sealing_failures, 0))
      INTO audit;

    SELECT jsonb_build_object(
               'by_level', coalesce((SELECT jsonb_object_agg(x.level, x.n) FROM
                                     (SELECT level, count(*) AS n FROM warden.classifications
                                       WHERE target_type = 'table' GROUP BY level) x), '{}'),
               'not_compliant', coalesce((SELECT jsonb_agg(x.target ORDER BY x.target) FROM warden.classifications x
                                           WHERE NOT x.compliant), '[]'),
               'personal_data_columns', (SELECT count(*) FROM warden.personal_data),
               'phi_reads_in_period', ev -> 'phi_reads')
      INTO classified;

    SELECT jsonb_build_object(
               'master_key_configured', coalesce(current_setting('warden.master_key_file', true), '') <> '',
               'tenant_keys', (SELECT count(DISTINCT (k.tenant, k.name)) FROM warden.keyring k WHERE k.destroyed_at IS NULL),
               'tenants_with_keys', (SELECT count(DISTINCT k.tenant) FROM warden.keyring k WHERE k.destroyed_at IS NULL),
               'key_versions_destroyed', (SELECT count(*) FROM warden.keyring k WHERE k.destroyed_at IS NOT NULL),
               'secrets', (SELECT count(*) FROM warden.secrets),
               'keys_rotated_in_period', ev -> 'keys_rotated',
               'keys_destroyed_in_period', ev -> 'keys_destroyed',
               'key_rotation_age', coalesce(current_setting('warden.key_rotation_age', true), '365d'))
      INTO crypto;

    SELECT jsonb_build_object(
               'active', (SELECT count(*) FROM warden.holds h WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold = h.id)),
               'released', (SELECT count(*) FROM warden.hold_releases),
               'placed_in_period', ev -> 'holds_placed',
               'released_in_period', ev -> 'holds_released',
               'violations_in_period', ev -> 'hold_violations',
               'preserved_versions', (SELECT count(*) FROM warden.preserved_versions),
               'preserved_after_release', (SELECT count(*) FROM warden.preserved_versions v
                                            WHERE NOT EXISTS (SELECT 1 FROM unnest(v.holds) x
                                                               WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold = x))),
               'verification_failures', coalesce((SELECT jsonb_agg(jsonb_build_object('case_ref', v.case_ref, 'check', v.check_name, 'detail', v.detail))
                                                   FROM warden.verify_holds() v WHERE NOT v.ok), '[]'))
      INTO holds;

    SELECT jsonb_build_object(
               'personal_data_columns', (SELECT count(*) FROM warden.personal_data),
               'tables_with_personal_data', (SELECT count(DISTINCT tbl) FROM warden.personal_data),
               'erasures_in_period', ev -> 'erasures',
               'exports_in_period', ev -> 'exports',
               'accounts_deleted_in_period', ev -> 'deleted_accounts',
               'consent_records', (SELECT count(*) FROM warden.consents))
      INTO privacy;

    coverage_gap := CASE WHEN (coverage ->> 'protected')::bigint < (coverage ->> 'tables')::bigint
                         THEN 'not every table is protected (coverage ' || (coverage ->> 'percent') || '%)' END;
    classification_gap := CASE WHEN classified -> 'by_level' = '{}'::jsonb THEN 'no table is classified (warden.classify)' END;
    audit_gap := CASE WHEN (audit ->> 'events_unrecorded')::bigint > 0 THEN 'events went unrecorded (warden.audit_queue_status())'
                      WHEN (audit ->> 'sealing_failures')::bigint > 0 THEN 'the sealing worker failed (warden.audit_queue_status())'
                      WHEN (audit ->> 'audited_tables')::bigint = 0 THEN 'no table is audited (warden.enable_audit)' END;

    -- controls: (framework, control, title, evidence, the lint rules that bear on it, the status
    -- the evidence gives besides the findings, a note on what remains manual)
    FOR c IN
        SELECT jsonb_build_object('framework', x.framework, 'control', x.control, 'title', x.title,
                                  'evidence', x.evidence, 'rules', to_jsonb(x.rules), 'gap', x.gap, 'manual', x.manual, 'note', x.note)
          FROM (VALUES
            ('SOC 2', 'CC6.1', 'Logical access security: tenant isolation enforced by the database',
             jsonb_build_object('tables', coverage -> 'tables', 'protected', coverage -> 'protected',
                                'coverage_percent', coverage -> 'percent', 'unprotected_count', coverage -> 'unprotected_count',
                                'unprotected', coverage -> 'unprotected'),
             ARRAY['unprotected_tenant_table', 'rls_not_forced', 'permissive_policy', 'view_bypasses_rls',
                   'materialized_view_copies_protected', 'foreign_tenant_table', 'unique_without_tenant'],
             coverage_gap,
             false, NULL::text),
            ('SOC 2', 'CC6.2', 'Credentials: who may authenticate, with which credentials',
             credentials,
             ARRAY['jwt_secret', 'issuer_without_audience', 'admin_key_without_expiry'],
             NULL, false, NULL),
            ('SOC 2', 'CC6.3', 'Authorization and removal of access, least privilege',
             access || jsonb_build_object('api_keys_stale', credentials -> 'api_keys_stale',
                                          'api_keys_revoked_in_period', credentials -> 'api_keys_revoked_in_period',
                                          'token_revocations', credentials -> 'token_revocations',
                                          'deleted_accounts', credentials -> 'deleted_accounts'),
             ARRAY['privileged_login', 'dangerous_grant', 'security_definer_search_path', 'security_definer_public', 'stale_api_key'],
             NULL, false, 'Reviewing who holds warden_admin and warden_auditor is a periodic human task; the lists are in the evidence.'),
            ('SOC 2', 'CC6.6', 'Protection against threats from outside the system boundary',
             transport || jsonb_build_object('denied_authentications_in_period', ev -> 'denied_authentications'),
             ARRAY['require_tls_off'],
             CASE WHEN transport ->> 'ssl' <> 'on' AND transport ->> 'require_tls' <> 'on'
                  THEN 'the server offers no TLS and warden.require_tls is off: tokens may travel in the clear' END,
             false, 'TLS terminated by a proxy in front of the server is outside what the database can see: record it as manual evidence.'),
            ('SOC 2', 'CC6.7', 'Restricting the movement and removal of information',
             logging || jsonb_build_object('phi_reads_in_period', ev -> 'phi_reads',
                                           'master_key_configured', crypto -> 'master_key_configured'),
             ARRAY['log_redaction_off', 'materialized_view_copies_protected'],
             NULL, false, NULL),
            ('SOC 2', 'CC7.2', 'Monitoring: every security-relevant change is an event in a verified chain',
             audit,
             ARRAY['audit_not_verified', 'digest_not_anchored'],
             audit_gap,
             false, NULL),
            ('SOC 2', 'CC7.3', 'Evaluating security events',
             jsonb_build_object('denied_authentications', ev -> 'denied_authentications', 'hold_violations', ev -> 'hold_violations',
                                'denied_events', ev -> 'denied', 'error_events', ev -> 'errors',
                                'last_verification', audit -> 'last_verification'),
             ARRAY['audit_not_verified'],
             NULL, false, 'The database records and counts the events; evaluating them and responding is the incident process.'),
            ('SOC 2', 'C1.1', 'Identifying and protecting confidential information',
             classified || jsonb_build_object('encryption', crypto),
             ARRAY['classification_not_compliant'],
             classification_gap,
             false, NULL),
            ('SOC 2', 'C1.2', 'Disposing of confidential information',
             privacy || jsonb_build_object('key_versions_destroyed', crypto -> 'key_versions_destroyed',
                                           'keys_destroyed_in_period', crypto -> 'keys_destroyed_in_period',
                                           'active_holds', holds -> 'active',
                                           'preserved_after_release', holds -> 'preserved_after_release'),
             ARRAY[]::text[],
             CASE WHEN (privacy ->> 'personal_data_columns')::bigint = 0
                  THEN 'no personal data is registered (warden.register_personal_data): erasure has nothing to erase'
                  WHEN (holds ->> 'preserved_after_release')::bigint > 0
                  THEN 'preserved versions outlive their released holds (warden.discard_preserved())' END,
             false, NULL),
            ('ISO 27001', 'A.5', 'Information security policies',
             jsonb_build_object('lint_findings', jsonb_array_length(findings)),
             ARRAY[]::text[], NULL, true,
             'Documented policies and their review cycle are outside the database.'),
            ('ISO 27001', 'A.6', 'Organization of information security',
             jsonb_build_object('warden_admin_members', access -> 'warden_admin_members',
                                'warden_auditor_members', access -> 'warden_auditor_members'),
             ARRAY[]::text[], NULL, true,
             'Roles and responsibilities are defined outside the database; the evidence lists who holds warden''s two roles (segregation of duties).'),
            ('ISO 27001', 'A.7', 'Human resource security',
             '{}'::jsonb, ARRAY[]::text[], NULL, true,
             'Security awareness training, onboarding and offboarding are outside the database.'),
            ('ISO 27001', 'A.8', 'Asset management: data classification',
             classified,
             ARRAY['classification_not_compliant'],
             classification_gap,
             false, 'Acceptable use policies are outside the database.'),
            ('ISO 27001', 'A.9', 'Access control',
             jsonb_build_object('coverage_percent', coverage -> 'percent', 'privileged_logins', access -> 'privileged_logins',
                                'issuers', credentials -> 'issuers', 'api_keys_active', credentials -> 'api_keys_active'),
             ARRAY['unprotected_tenant_table', 'rls_not_forced', 'permissive_policy', 'view_bypasses_rls', 'unique_without_tenant',
                   'privileged_login', 'dangerous_grant', 'security_definer_search_path', 'security_definer_public',
                   'jwt_secret', 'issuer_without_audience', 'stale_api_key', 'admin_key_without_expiry'],
             coverage_gap,
             false, NULL),
            ('ISO 27001', 'A.10', 'Cryptography',
             crypto || jsonb_build_object('transport', transport, 'jwt_secret_bytes', credentials -> 'jwt_secret_bytes'),
             ARRAY['jwt_secret', 'key_not_rotated', 'require_tls_off'],
             CASE WHEN NOT (crypto ->> 'master_key_configured')::boolean THEN 'warden.master_key_file is not set: nothing can be encrypted' END,
             false, 'Encryption of the storage volumes is the infrastructure''s.'),
            ('ISO 27001', 'A.12', 'Operations security: logging and monitoring',
             audit || jsonb_build_object('log', logging),
             ARRAY['audit_not_verified', 'digest_not_anchored', 'log_redaction_off'],
             audit_gap,
             false, 'Change management, capacity planning and malware protection are outside the database.'),
            ('ISO 27001', 'A.14', 'System development and security testing',
             '{}'::jsonb, ARRAY[]::text[], NULL, true,
             'The development lifecycle and its security testing are outside the database.'),
            ('ISO 27001', 'A.16', 'Incident management',
             jsonb_build_object('denied_authentications', ev -> 'denied_authentications', 'hold_violations', ev -> 'hold_violations',
                                'denied_events', ev -> 'denied', 'last_verification', audit -> 'last_verification'),
             ARRAY['audit_not_verified'],
             NULL, false, 'Incident response procedures and breach notification are processes outside the database; the evidence is what they start from.'),
            ('ISO 27001', 'A.18', 'Compliance: GDPR, audit logging, legal holds',
             jsonb_build_object('privacy', privacy, 'holds', holds, 'audit_events', audit -> 'events_total',
                                'last_verification', audit -> 'last_verification'),
             ARRAY['audit_not_verified', 'classification_not_compliant'],
             CASE WHEN jsonb_array_length(holds -> 'verification_failures') > 0 THEN 'warden.verify_holds() reports failures'
                  WHEN (privacy ->> 'personal_data_columns')::bigint = 0 THEN 'no personal data is registered (warden.register_personal_data)' END,
             false, NULL)
          ) x(framework, control, title, evidence, rules, gap, manual, note)
    LOOP
        rules_of := ARRAY(SELECT jsonb_array_elements_text(c -> 'rules'));
        c := c || jsonb_build_object('findings',
                 coalesce((SELECT jsonb_agg(f) FROM jsonb_array_elements(by_rule) f WHERE f ->> 'rule' = ANY (rules_of)), '[]'));
        -- a gap: what the evidence shows, or the lint's findings of severity medium and above
        IF c ->> 'gap' IS NULL AND NOT (c ->> 'manual')::boolean THEN
            c := c || jsonb_build_object('gap',
                     (SELECT 'findings of warden.security_lint(): ' || string_agg(DISTINCT f ->> 'rule', ', ')
                        FROM jsonb_array_elements(c -> 'findings') f
                       WHERE f ->> 'severity' IN ('critical', 'high', 'medium')));
        END IF;
        c := jsonb_build_object(
                 'framework', c -> 'framework', 'control', c -> 'control', 'title', c -> 'title',
                 'status', CASE WHEN (c ->> 'manual')::boolean THEN 'manual'
                                WHEN c ->> 'gap' IS NOT NULL THEN 'gap'
                                ELSE 'met' END,
                 'gap', c -> 'gap',
                 'note', c -> 'note',
                 'evidence', (c -> 'evidence') || jsonb_build_object('findings', c -> 'findings'));
        controls := controls || jsonb_build_array(jsonb_strip_nulls(c));
    END LOOP;

    RETURN jsonb_build_object(
        'generated_at', now(),
        'database', current_database(),
        'warden_version', (SELECT e.extversion FROM pg_extension e WHERE e.extname = 'warden'),
        'period', jsonb_build_object('from', period_from, 'to', period_to),
        'summary', jsonb_build_object(
            'controls', jsonb_array_length(controls),
            'met', (SELECT count(*) FROM jsonb_array_elements(controls) x WHERE x ->> 'status' = 'met'),
            'gap', (SELECT count(*) FROM jsonb_array_elements(controls) x WHERE x ->> 'status' = 'gap'),
            'manual', (SELECT count(*) FROM jsonb_array_elements(controls) x WHERE x ->> 'status' = 'manual'),
            'coverage_percent', coverage -> 'percent',
            'lint_findings', (SELECT jsonb_object_agg(s, (SELECT count(*) FROM jsonb_array_elements(findings) f WHERE f ->> 'severity' = s))
                                FROM unnest(ARRAY['critical', 'high', 'medium', 'low', 'info']) s),
            'events_in_period', ev -> 'total',
            'denied_authentications_in_period', ev -> 'denied_authentications',
            'hold_violations_in_period', ev -> 'hold_violations'),
        'controls', controls,
        'findings', findings);
END
$$;
COMMENT ON FUNCTION warden.compliance_report(timestamptz, timestamptz) IS 'SOC 2 and ISO 27001 controls with their status (met, gap, manual) and evidence from the live state of this database, for the period [period_from, period_to) (see README, "Posture and compliance").';
REVOKE EXECUTE ON FUNCTION warden.compliance_report(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.compliance_report(timestamptz, timestamptz) TO warden_admin, warden_auditor;

-- One evidence value as Markdown text: scalars as they are, arrays and objects compact, an
-- unprotected table as its name and problem.
CREATE FUNCTION warden._md_value(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(v)
               WHEN 'string' THEN replace(v #>> '{}', '|', '\|')
               WHEN 'null' THEN 'none'
               WHEN 'array' THEN CASE WHEN jsonb_array_length(v) = 0 THEN 'none'
                                      ELSE replace((SELECT string_agg(CASE WHEN jsonb_typeof(x) = 'string' THEN x #>> '{}'
                                                                           WHEN x ? 'table' THEN format('%s (%s)', x ->> 'table', x ->> 'issue')
                                                                           ELSE x::text END, ', ')
                                                      FROM jsonb_array_elements(v) x), '|', '\|') END
               WHEN 'object' THEN CASE WHEN v = '{}'::jsonb THEN 'none'
                                       ELSE replace((SELECT string_agg(k.key || ': ' || CASE jsonb_typeof(k.value) WHEN 'string' THEN k.value #>> '{}' ELSE k.value::text END, ', ')
                                                       FROM jsonb_each(v) k), '|', '\|') END
               ELSE v::text END
$$;
COMMENT ON FUNCTION warden._md_value(jsonb) IS 'Internal: an evidence value as Markdown text, for warden.compliance_report_markdown().';

CREATE FUNCTION warden.compliance_report_markdown(
    period_from timestamptz DEFAULT (pg_catalog.now() - interval '30 days'),
    period_to timestamptz DEFAULT pg_catalog.now())
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
AS $$
DECLARE
    r jsonb := warden.compliance_report(period_from, period_to);
    s jsonb := r -> 'summary';
    shown int := 500;
BEGIN
    RETURN format(E'# Compliance report: database %s\n\n', r ->> 'database')
        || format(E'Generated %s by warden %s from the live state of the database. Period: %s to %s.\n\n',
                  r ->> 'generated_at', r ->> 'warden_version', r #>> '{period,from}', r #>> '{period,to}')
        || E'Status: **met** (the evidence shows the control in place), **gap** (the evidence or a lint finding shows what is missing), **manual** (the database cannot know; attach the organization''s own evidence).\n\n'
        || E'## Summary\n\n| | |\n|---|---|\n'
        || format(E'| controls | %s (%s met, %s gap, %s manual) |\n', s ->> 'controls', s ->> 'met', s ->> 'gap', s ->> 'manual')
        || format(E'| tenant isolation coverage | %s%% of tables |\n', s ->> 'coverage_percent')
        || format(E'| lint findings | %s critical, %s high, %s medium, %s low |\n',
                  s #>> '{lint_findings,critical}', s #>> '{lint_findings,high}', s #>> '{lint_findings,medium}', s #>> '{lint_findings,low}')
        || format(E'| audit events in the period | %s |\n', s ->> 'events_in_period')
        || format(E'| denied authentications in the period | %s |\n', s ->> 'denied_authentications_in_period')
        || format(E'| legal hold violations in the period | %s |\n\n', s ->> 'hold_violations_in_period')
        || E'## Controls\n\n| framework | control | title | status |\n|---|---|---|---|\n'
        || (SELECT string_agg(format(E'| %s | %s | %s | %s |\n', c ->> 'framework', c ->> 'control', c ->> 'title',
                                     CASE c ->> 'status' WHEN 'gap' THEN '**gap**' ELSE c ->> 'status' END), '' ORDER BY n)
              FROM jsonb_array_elements(r -> 'controls') WITH ORDINALITY x(c, n))
        || (SELECT string_agg(
                format(E'\n## %s %s: %s\n\nStatus: **%s**', c ->> 'framework', c ->> 'control', c ->> 'title', c ->> 'status')
                || CASE WHEN c ? 'gap' THEN format('. Gap: %s', c ->> 'gap') ELSE '' END || E'.\n'
                || CASE WHEN c ? 'note' THEN format(E'\n%s\n', c ->> 'note') ELSE '' END
                || coalesce(E'\n| evidence | value |\n|---|---|\n'
                            || (SELECT string_agg(format(E'| %s | %s |\n', replace(e.key, '_', ' '), warden._md_value(e.value)), '' ORDER BY e.key)
                                  FROM jsonb_each((c -> 'evidence') - 'findings') e), '')
                || coalesce(E'\nFindings of `warden.security_lint()`:\n\n| severity | rule | findings | objects | remediation (of the first) |\n|---|---|---|---|---|\n'
                            || (SELECT string_agg(format(E'| %s | %s | %s | %s | `%s` |\n', f ->> 'severity', f ->> 'rule', f ->> 'count',
                                                         warden._md_value(f -> 'objects')
                                                         || CASE WHEN (f ->> 'count')::int > 10 THEN ', ...' ELSE '' END,
                                                         replace(f ->> 'remediation', '|', '\|')), '')
                                  FROM jsonb_array_elements(c #> '{evidence,findings}') f), ''),
                '' ORDER BY n)
              FROM jsonb_array_elements(r -> 'controls') WITH ORDINALITY x(c, n))
        || CASE WHEN jsonb_array_length(r -> 'findings') = 0 THEN E'\n## Findings\n\n`warden.security_lint()` found nothing.\n'
                ELSE E'\n## Findings\n\n| severity | rule | object | detail | remediation |\n|---|---|---|---|---|\n'
                     || (SELECT string_agg(format(E'| %s | %s | `%s` | %s | `%s` |\n', f ->> 'severity', f ->> 'rule',
                                                  replace(f ->> 'object', '|', '\|'), replace(f ->> 'detail', '|', '\|'),
                                                  replace(f ->> 'remediation', '|', '\|')), '' ORDER BY n)
                           FROM jsonb_array_elements(r -> 'findings') WITH ORDINALITY x(f, n) WHERE n <= shown)
                     || CASE WHEN jsonb_array_length(r -> 'findings') > shown
                             THEN format(E'\n... and %s more: the complete list is `warden.compliance_report() -> ''findings''` and `SELECT * FROM warden.security_lint()`.\n',
                                         jsonb_array_length(r -> 'findings') - shown)
                             ELSE '' END END;
END
$$;
COMMENT ON FUNCTION warden.compliance_report_markdown(timestamptz, timestamptz) IS 'warden.compliance_report() as a Markdown document an auditor can read and attach.';
REVOKE EXECUTE ON FUNCTION warden.compliance_report_markdown(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION warden.compliance_report_markdown(timestamptz, timestamptz) TO warden_admin, warden_auditor;
