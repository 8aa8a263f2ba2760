-- warden.security_lint(): each rule fires on the object that breaks it and stays quiet on its
-- correct twin (objects named lint_*; the database-wide rules through settings of this transaction).
begin;
create function pg_temp.lint() returns table (rule text, severity text, object text) language sql as $$
    select rule, severity, object from warden.security_lint()
     where (object like '%lint\_%' or object like 'warden.%' or object like 'https://lint%')
       and rule not in ('audit_not_verified', 'digest_not_anchored')  -- tests/ops/evidence.sh
     order by 1, 3
$$;
create schema lint_s;
-- tenant-like columns: a table without isolation (fires), its protected twin, a table whose
-- column is not tenant-like (quiet), and a configured name
create table lint_unprotected (id int primary key, tenant_id uuid not null);
create table lint_org (id int primary key, org_id text not null);
create table lint_customer (id int primary key, customer text not null);
create table lint_other (id int primary key, owner_id uuid);
create table lint_protected (id int primary key, tenant_id uuid not null, body text, code text);
select warden.protect_table('lint_protected') is not null as protected;
-- row level security switched off on a protected table (fires); forced on the twin
create table lint_rls_off (id int primary key, tenant_id uuid not null);
select warden.protect_table('lint_rls_off') is not null as protected;
alter table lint_rls_off no force row level security;
-- another permissive policy (fires); a restrictive one (quiet)
create table lint_wide (id int primary key, tenant_id uuid not null);
select warden.protect_table('lint_wide') is not null as protected;
create policy lint_open on lint_wide for select using (true);
create policy lint_narrow on lint_protected as restrictive for select using (true);
-- views: owner's rights of a superuser (fires), security_invoker (quiet), a materialized copy (fires)
create view lint_view as select * from lint_protected;
create view lint_view_invoker with (security_invoker = on) as select * from lint_protected;
create materialized view lint_copy as select * from lint_protected;
-- unique indexes: without the tenant column (fires), with it (quiet)
create unique index lint_code_uniq on lint_protected (code);
create unique index lint_code_tenant_uniq on lint_protected (tenant_id, body);
-- grants: TRUNCATE and TRIGGER to PUBLIC (fire), SELECT (quiet)
grant truncate, trigger on lint_wide to public;
grant select on lint_protected to public;
-- SECURITY DEFINER: without search_path and executable by PUBLIC (fire); fixed and revoked (quiet)
create function lint_definer() returns int language sql security definer as 'select 1';
create function lint_definer_ok() returns int language sql security definer set search_path = pg_catalog, pg_temp as 'select 1';
revoke execute on function lint_definer_ok() from public;
-- an identity provider without an audience (fires), one with (quiet)
\set ec '{"kty": "EC", "crv": "P-256", "kid": "ec-1", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}'
select warden.register_issuer('https://lint-open.example.test', format('{"keys": [%s]}', :'ec')::jsonb);
select warden.register_issuer('https://lint-aud.example.test', format('{"keys": [%s]}', :'ec')::jsonb, '{"audience": "api"}');
-- a foreign table with a tenant column (fires; dropped below), one without (quiet)
create extension postgres_fdw;
create server lint_server foreign data wrapper postgres_fdw;
create foreign table lint_foreign (id int, tenant_id uuid) server lint_server;
create foreign table lint_foreign_codes (code text) server lint_server;
-- a login role that bypasses row level security (fires; made NOLOGIN below)
create role lint_bypass login bypassrls;
-- a CONFIDENTIAL schema with a table neither protected nor audited (fires)
select warden.classify('lint_s', 'CONFIDENTIAL');
create table lint_s.lint_secret (id int primary key, tenant_id uuid not null);
select * from pg_temp.lint();
-- the configured tenant column names: customer counts once it is named
set local warden.lint_tenant_columns = 'tenant_id,customer';
select rule, object from pg_temp.lint() where rule = 'unprotected_tenant_table';
reset warden.lint_tenant_columns;
-- the twins once fixed: none of these rules fires any more (the classified table first: while it
-- is out of compliance, warden's classification guard refuses DDL that could weaken a table)
select warden.protect_table('lint_s.lint_secret') is not null as protected, warden.enable_audit('lint_s.lint_secret') is not null as audited;
alter table lint_rls_off force row level security;
drop policy lint_open on lint_wide;
alter view lint_view set (security_invoker = on);
drop materialized view lint_copy;
drop index lint_code_uniq;
revoke truncate, trigger on lint_wide from public;
alter function lint_definer() set search_path = pg_catalog, pg_temp;
revoke execute on function lint_definer() from public;
select warden.register_issuer('https://lint-open.example.test', format('{"keys": [%s]}', :'ec')::jsonb, '{"audience": "api"}');
select warden.protect_table('lint_unprotected') is not null as protected;
drop table lint_org;
drop foreign table lint_foreign;
alter role lint_bypass nologin;
select * from pg_temp.lint();
-- database-wide rules, by the settings of this transaction: a short secret, statements logged
-- without redaction; and their twins
set local warden.jwt_secret = 'too-short';
set local log_statement = 'all';
set local warden.log_redaction = off;
select rule, severity, object, detail from warden.security_lint() where rule in ('jwt_secret', 'log_redaction_off') order by 1;
set local warden.log_redaction = on;
set local log_statement = 'none';
select count(*) as database_wide_findings from warden.security_lint() where rule in ('jwt_secret', 'log_redaction_off');
reset warden.jwt_secret;
select count(*) as with_the_secret_back from warden.security_lint() where rule = 'jwt_secret';
-- API keys: an unused one is stale, an admin key without expiry; a revoked one is not listed
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'admin');
select left(warden.create_api_key('lint-admin', 'admin', '{*:*:*}'), 4) as key;
select rule, severity from warden.security_lint() where rule in ('stale_api_key', 'admin_key_without_expiry') and object like 'wdn\_%'
 and (select count(*) from warden.api_keys where name = 'lint-admin') = 1 order by 1;
select warden.revoke_api_key(id, 'lint') from warden.api_keys where name = 'lint-admin';
select count(*) as after_revoking from warden.security_lint() where rule in ('stale_api_key', 'admin_key_without_expiry');
-- only for superusers, warden_admin and warden_auditor
set local role regress_app;
select regress_try('select * from warden.security_lint()');
rollback;
