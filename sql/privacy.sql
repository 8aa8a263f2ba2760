-- warden data-subject rights (GDPR): consent history, deleted accounts, the application's
-- membership table. The personal-data registry is in sql/hold.sql (the guards read it too).

-- Consent and objection (Art. 7, 21): append-only history, the latest row per (tenant, subject,
-- purpose) wins. Written only by warden.record_consent().
CREATE TABLE warden.consents (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      text NOT NULL,
    subject     text NOT NULL,
    purpose     text NOT NULL CHECK (purpose OPERATOR(pg_catalog.<>) ''),
    granted     boolean NOT NULL,
    source      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    recorded_by text
);
CREATE INDEX consents_lookup ON warden.consents (tenant, subject, purpose, id DESC);
COMMENT ON TABLE warden.consents IS 'Consent and objection history (append-only), written by warden.record_consent().';

-- Accounts deleted by warden.delete_account(): tokens of the actor issued before deleted_at are
-- refused by every authentication path.
CREATE TABLE warden.deleted_accounts (
    actor      text PRIMARY KEY,
    deleted_at timestamptz NOT NULL,
    deleted_by text,
    reason     text NOT NULL
);
COMMENT ON TABLE warden.deleted_accounts IS 'Accounts deleted by warden.delete_account(): their earlier tokens no longer authenticate.';

-- The application's membership table (who belongs to which tenant at which level), registered
-- with warden.register_memberships(): warden.delete_account() reads it to refuse deleting a
-- tenant's last admin.
CREATE TABLE warden.membership_tables (
    tbl          regclass PRIMARY KEY,
    actor_column name NOT NULL,
    level_column name NOT NULL
);
COMMENT ON TABLE warden.membership_tables IS 'The membership table warden.delete_account() checks for last admins (warden.register_memberships()).';

CREATE TRIGGER warden_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON warden.consents
    FOR EACH STATEMENT EXECUTE FUNCTION warden._hold_immutable();
CREATE TRIGGER warden_immutable BEFORE UPDATE OR DELETE OR TRUNCATE ON warden.deleted_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION warden._hold_immutable();
ALTER TABLE warden.consents ENABLE ALWAYS TRIGGER warden_immutable;
ALTER TABLE warden.deleted_accounts ENABLE ALWAYS TRIGGER warden_immutable;

REVOKE ALL ON warden.consents, warden.deleted_accounts FROM PUBLIC;
GRANT SELECT ON warden.deleted_accounts TO warden_guard;
-- A table's owner registers it (and only its owner removes it), as with warden.guarded_schemas.
ALTER TABLE warden.membership_tables ENABLE ROW LEVEL SECURITY;
CREATE POLICY membership_tables_read ON warden.membership_tables FOR SELECT USING (true);
CREATE POLICY membership_tables_add ON warden.membership_tables FOR INSERT
    WITH CHECK (pg_catalog.pg_has_role((SELECT k.relowner FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) tbl), 'USAGE'));
CREATE POLICY membership_tables_remove ON warden.membership_tables FOR DELETE
    USING (pg_catalog.pg_has_role((SELECT k.relowner FROM pg_catalog.pg_class k WHERE k.oid OPERATOR(pg_catalog.=) tbl), 'USAGE'));
GRANT SELECT, INSERT, DELETE ON warden.membership_tables TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('warden.consents', '');
SELECT pg_catalog.pg_extension_config_dump('warden.deleted_accounts', '');
SELECT pg_catalog.pg_extension_config_dump('warden.membership_tables', '');
SELECT pg_catalog.pg_extension_config_dump('warden.consents_id_seq', '');

-- Whether the subject's latest consent for the purpose, in the current tenant, is a grant.
-- False without a context or without any record (no consent is not consent). Usable in RLS
-- policies: STABLE, one index probe. The subject is an identifier (a uuid, a number or a
-- provider's id, as text); the uuid form is kept for policies written before 0.6.0.
CREATE FUNCTION warden.has_consent(subject text, purpose text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT c.granted FROM warden.consents c
                      WHERE c.tenant OPERATOR(pg_catalog.=) warden.current_tenant_id()
                        AND c.subject OPERATOR(pg_catalog.=) $1 AND c.purpose OPERATOR(pg_catalog.=) $2
                      ORDER BY c.id DESC LIMIT 1), false)
$$;
COMMENT ON FUNCTION warden.has_consent(text, text) IS 'Whether the subject''s latest consent for the purpose in the current tenant is a grant (false without one).';
CREATE FUNCTION warden.has_consent(subject uuid, purpose text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp
AS $$ SELECT warden.has_consent($1::text, $2) $$;
COMMENT ON FUNCTION warden.has_consent(uuid, text) IS 'warden.has_consent(text, text) for a uuid subject.';

-- The subject's consent history in the current tenant, oldest first (nothing without a context).
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

-- Registers the application's membership table for warden.delete_account()'s last-admin check:
-- a protected table with one row per (tenant, actor) and the actor's level there.
CREATE FUNCTION warden.register_memberships(tbl regclass, actor_column name DEFAULT 'actor_id',
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
