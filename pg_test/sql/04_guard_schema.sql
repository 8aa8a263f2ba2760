-- guard_schema: new tables in a guarded schema are deny-by-default until protected.
begin;
set local role regress_owner;
create schema tenant_data;
create table tenant_data.before_guard (tenant_id uuid);
select warden.guard_schema('tenant_data');
select warden.guard_schema('tenant_data');  -- idempotent
select schema_name, guarded_by from warden.guarded_schemas;

create table tenant_data.invoices (id int, tenant_id uuid);
create table tenant_data.copied as select 1 as id, null::uuid as tenant_id;
select relname, relrowsecurity, relforcerowsecurity,
       (select count(*) from pg_policy where polrelid = c.oid) as policies
  from pg_class c where relnamespace = 'tenant_data'::regnamespace and relkind = 'r' order by relname;
select table_name, protected, problem from warden.rls_coverage where schema_name = 'tenant_data' order by 1;

-- deny by default: even the owner sees nothing until the table is protected
select regress_try($$insert into tenant_data.invoices values (1, '00000000-0000-0000-0000-00000000000a')$$);
select warden.protect_table('tenant_data.invoices');
select table_name, protected from warden.rls_coverage where schema_name = 'tenant_data' order by 1;

-- unprotecting a table in a guarded schema keeps it deny-by-default
select warden.unprotect_table('tenant_data.invoices');
select relrowsecurity, relforcerowsecurity from pg_class where oid = 'tenant_data.invoices'::regclass;

-- other schemas are not affected; unguard stops the guard for new tables
create table public.unguarded (tenant_id uuid);
select relrowsecurity from pg_class where oid = 'public.unguarded'::regclass;
select warden.unguard_schema('tenant_data');
create table tenant_data.after_unguard (tenant_id uuid);
select relrowsecurity from pg_class where oid = 'tenant_data.after_unguard'::regclass;
select count(*) from warden.guarded_schemas;

-- a role cannot guard, or write guard rows for, a schema it does not own
reset role;
set local role regress_app;
select regress_try($$select warden.guard_schema('tenant_data')$$);
select regress_try($$insert into warden.guarded_schemas (schema_name) values ('tenant_data')$$);
rollback;

-- With row_security = off (pg_dump's scripts set it), an ordinary owner's DDL works as without
-- warden: the DDL event trigger and warden's functions read warden's own row-level-secured tables
-- whatever the caller's row_security.
begin;
set local role regress_owner;
create schema guarded_off;
select warden.guard_schema('guarded_off');
set local row_security = off;
create table guarded_off.plain (id int, tenant_id uuid);
create table guarded_off.parted (id int, tenant_id uuid) partition by range (id);
create table guarded_off.parted_1 partition of guarded_off.parted for values from (0) to (10);
create table guarded_off.copied as select 1 as id, null::uuid as tenant_id;
alter table guarded_off.plain add column note text;
create table public.outside (id int, tenant_id uuid);
alter table public.outside add column note text;
select warden.protect_table('public.outside');
create table public.parted_off (id int, tenant_id uuid) partition by list (id);
select warden.protect_table('public.parted_off');
create table public.parted_off_1 partition of public.parted_off for values in (1);
select relname, relrowsecurity, relforcerowsecurity
  from pg_class where relnamespace in ('guarded_off'::regnamespace, 'public'::regnamespace)
   and relname in ('plain', 'parted', 'parted_1', 'copied', 'outside', 'parted_off', 'parted_off_1') order by relname;
select warden.unprotect_table('public.outside');
select warden.unguard_schema('guarded_off');
select warden.guard_schema('guarded_off');
show row_security;
rollback;
