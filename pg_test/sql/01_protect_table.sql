-- protect_table: RLS on and forced, one policy per command, TRUNCATE revoked, tenant index, idempotent.
begin;
set local role regress_owner;
create table docs (id int primary key, tenant_id uuid not null, body text);
grant select, insert, update, delete, truncate on docs to regress_app;
select relrowsecurity, relforcerowsecurity from pg_class where oid = 'docs'::regclass;

select warden.protect_table('docs');
select relrowsecurity, relforcerowsecurity from pg_class where oid = 'docs'::regclass;
select * from regress_policies('docs');
-- the tenant index was created because no index led with tenant_id
select indexrelid::regclass, pg_get_indexdef(indexrelid) from pg_index where indrelid = 'docs'::regclass order by 1;
-- TRUNCATE bypasses RLS: revoked from everyone but the owner
select grantee::regrole, string_agg(privilege_type, ',' order by privilege_type)
  from pg_class, aclexplode(relacl) where oid = 'docs'::regclass group by 1 order by 1;

-- idempotent: a second call changes nothing and adds no second index
select warden.protect_table('docs');
select count(*) as policies from pg_policy where polrelid = 'docs'::regclass;
select count(*) as indexes from pg_index where indrelid = 'docs'::regclass;

-- an existing index that leads with the tenant column is reused
create table notes (tenant_id uuid, id int, primary key (tenant_id, id));
select warden.protect_table('notes');
select count(*) as indexes from pg_index where indrelid = 'notes'::regclass;

-- another tenant column name
create table orders (id int, org uuid);
select warden.protect_table('orders', 'org');
select * from regress_policies('orders');

-- partitioned tables: the root and every partition, including ones created or attached later
create table events (tenant_id uuid not null, at date not null, what text) partition by range (at);
create table events_2025 partition of events for values from ('2025-01-01') to ('2026-01-01');
select warden.protect_table('events');
create table events_2026 partition of events for values from ('2026-01-01') to ('2027-01-01');
create table events_2027 (tenant_id uuid not null, at date not null, what text);
alter table events attach partition events_2027 for values from ('2027-01-01') to ('2028-01-01');
select relid, tenant_column, kind, partition_of from warden.protected_tables order by relid::text;

-- the policies hold for the application role
reset role;
set local role regress_app;
select warden.current_tenant() is null as no_context, count(*) as rows_visible from docs;
reset role;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'write');
set local role regress_app;
insert into docs values (1, '00000000-0000-0000-0000-00000000000a', 'mine');
select regress_try($$insert into docs values (2, '00000000-0000-0000-0000-00000000000b', 'theirs')$$);
select regress_try($$update docs set tenant_id = '00000000-0000-0000-0000-00000000000b'$$);
select regress_try('truncate docs');
-- write does not imply delete
delete from docs;
select count(*) from docs;

-- unprotect_table removes the policies and, with none left, switches RLS off
reset role;
set local role regress_owner;
select warden.unprotect_table('orders');
select relrowsecurity, relforcerowsecurity, (select count(*) from pg_policy where polrelid = 'orders'::regclass) as policies
  from pg_class where oid = 'orders'::regclass;
rollback;
