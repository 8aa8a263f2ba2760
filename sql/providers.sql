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
