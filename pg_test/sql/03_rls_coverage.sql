-- rls_coverage: every table outside the system schemas, with what is wrong with it.
begin;
set local role regress_owner;
create schema cov;
create table cov.open_table (tenant_id uuid);
create table cov.enabled_only (tenant_id uuid);
alter table cov.enabled_only enable row level security;
create table cov.not_forced (tenant_id uuid);
alter table cov.not_forced enable row level security;
create policy p on cov.not_forced using (true);
create table cov.custom (tenant_id uuid);
alter table cov.custom enable row level security, force row level security;
create policy mine on cov.custom using (tenant_id = warden.current_tenant());
create table cov.good (tenant_id uuid);
select warden.protect_table('cov.good');
create table cov.widened (tenant_id uuid);
select warden.protect_table('cov.widened');
create policy everyone on cov.widened for select using (true);
create table cov.damaged (tenant_id uuid);
select warden.protect_table('cov.damaged');
drop policy warden_delete on cov.damaged;
create table cov.truncatable (tenant_id uuid);
select warden.protect_table('cov.truncatable');
grant truncate on cov.truncatable to regress_app;

select table_name, kind, rls_enabled, rls_forced, policy_count, protected, problem
  from warden.rls_coverage where schema_name = 'cov' order by table_name;
select table_name from warden.protected_tables where schema_name = 'cov' order by 1;

-- the percentage over the whole database, before and after protecting the rest
select count(*) as tables, count(*) filter (where protected) as protected from warden.rls_coverage;
select warden.rls_coverage_percent();
select warden.protect_table(relid) from warden.rls_coverage where not protected and schema_name = 'cov' order by table_name;
drop policy everyone on cov.widened;
revoke truncate on cov.truncatable from regress_app;
drop policy mine on cov.custom;
drop policy p on cov.not_forced;
select warden.protect_table(relid) from warden.rls_coverage where not protected and schema_name = 'cov' order by table_name;
select table_name, protected, problem from warden.rls_coverage where schema_name = 'cov' order by table_name;
select warden.rls_coverage_percent();
rollback;
