-- Identity providers: register_issuer and its refusals, the issuers view, rotation by registering
-- again, unregister_issuer. (Tokens of registered issuers: src/pg_tests.rs.)
begin;
-- an EC P-256 key and an Ed25519 key (public keys of the RFC 7515 and RFC 8037 examples)
\set ec '{"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}'
\set ed '{"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}'
select warden.register_issuer('https://clerk.example.test', format('{"keys": [%s, %s]}', :'ec', :'ed')::jsonb,
                              '{"audience": "my-api", "tenant": "o.id", "level": "o.rol", "levels": {"admin": "admin", "member": "write"}}');
select issuer, key_ids, algorithms, options ->> 'tenant' as tenant_path, registered_by_role from warden.issuers;
-- keys for encryption and of unsupported types are skipped with a NOTICE
select warden.register_issuer('https://auth0.example.test', format('{"keys": [%s, {"kty": "RSA", "use": "enc", "kid": "e", "n": "AQAB", "e": "AQAB"}, {"kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA"}]}', :'ec')::jsonb);
select issuer, key_ids from warden.issuers order by issuer;
-- refusals: 22023 with the reason
select regress_try($$select warden.register_issuer('https://x.test', '{"keys": [{"kty": "RSA", "kid": "weak", "n": "w8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDww", "e": "AQAB"}]}')$$);
select regress_try($$select warden.register_issuer('https://x.test', '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}')$$);
select regress_try($$select warden.register_issuer('https://x.test', '{"keys": [{"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}]}')$$);
select regress_try($$select warden.register_issuer('https://x.test', '[]')$$);
select regress_try(format($$select warden.register_issuer('https://x.test', '{"keys": [%s]}', '{"leeway_seconds": 301}')$$, :'ec'));
select regress_try(format($$select warden.register_issuer('https://x.test', '{"keys": [%s]}', '{"levels": {"owner": "root"}}')$$, :'ec'));
select regress_try(format($$select warden.register_issuer('https://x.test', '{"keys": [%s]}', '{"mystery": 1}')$$, :'ec'));
select regress_try(format($$select warden.register_issuer('warden', '{"keys": [%s]}')$$, :'ec'));
select regress_try(format($$select warden.register_issuer('', '{"keys": [%s]}')$$, :'ec'));
-- rotation: registering again replaces the keys and the options
select warden.register_issuer('https://clerk.example.test', format('{"keys": [%s]}', :'ed')::jsonb, '{"audience": ["my-api", "web"]}');
select issuer, key_ids, algorithms, options from warden.issuers where issuer = 'https://clerk.example.test';
-- registration and removal are audit events
select warden.seal_audit() > 0 as sealed;
select action, resource_id, changes -> 'keys' as keys from warden.audit_trail where action = 'register_issuer' order by id;
-- only superusers and warden_admin
set local role regress_app;
select regress_try(format($$select warden.register_issuer('https://y.test', '{"keys": [%s]}')$$, :'ec'));
select regress_try($$select warden.unregister_issuer('https://clerk.example.test')$$);
select count(*) as issuers_visible from warden.issuers;
reset role;
select warden.unregister_issuer('https://auth0.example.test');
select regress_try($$select warden.unregister_issuer('https://auth0.example.test')$$);
select issuer from warden.issuers;
rollback;
