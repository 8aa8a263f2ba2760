-- A hold keeps rows and their content: while a hold covers a row, every UPDATE of it (any column,
-- by the application, the owner, a superuser, in replica mode, through a view, a CTE or MERGE)
-- keeps the prior version in warden.preserved_versions; rows no hold covers are not copied. The
-- table is append-only for everyone; who reads it; verify_holds; discard_preserved after the
-- release; export_subject and erase_subject.
begin;
create function pg_temp.try(sql text) returns text language sql as $$
    select regexp_replace(regress_try(sql), '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g')
$$;
create function pg_temp.ctx(t text, lvl text, actor text default '00000000-0000-0000-0000-000000000001') returns void language sql as $$
    select warden.set_context(('00000000-0000-0000-0000-00000000000' || t)::uuid, actor::uuid, lvl)
$$;
create function pg_temp.kept() returns table (tbl text, ident jsonb, body text, case_refs text[], actor text, role name)
language sql as $$
    select table_name, row_identity, old_row ->> 'body', case_refs, actor, database_role
      from warden.preserved_versions order by id
$$;
set local role regress_owner;
create table pv_docs (id int primary key, tenant_id uuid not null, body text, email text);
create table pv_log (tenant_id uuid not null, body text);
create view pv_docs_v as select * from pv_docs;
select warden.protect_table('pv_docs'), warden.protect_table('pv_log');
grant select, insert, update, delete on pv_docs, pv_docs_v, pv_log to regress_app;
reset role;
insert into pv_docs values (1, '00000000-0000-0000-0000-00000000000a', 'the original evidence', 'one@example.test'),
                           (2, '00000000-0000-0000-0000-00000000000a', 'second', 'two@example.test'),
                           (3, '00000000-0000-0000-0000-00000000000b', 'other tenant', 'three@example.test');
insert into pv_log values ('00000000-0000-0000-0000-00000000000a', 'no key');
select warden.register_personal_data('pv_docs', 'id', '{email}', 'redact');
-- no hold: nothing is kept
select pg_temp.ctx('a', 'write');
set local role regress_app;
update pv_docs set body = body where id = 2;
reset role;
select count(*) as kept_without_hold from warden.preserved_versions;
select warden.place_hold('REG-PV-1', 'litigation', '00000000-0000-0000-0000-00000000000a') is not null as held;
-- the application overwrites a held row: the UPDATE goes through, the prior version is kept
select pg_temp.ctx('a', 'write');
set local role regress_app;
update pv_docs set body = 'overwritten' where id = 1;
update pv_docs_v set body = 'through a view' where id = 1;
with w as (update pv_docs set body = 'through a CTE' where id = 2 returning 1) select count(*) from w;
merge into pv_docs d using (values (2)) v(id) on d.id = v.id when matched then update set body = 'through MERGE';
update pv_log set body = 'no key, still kept';
-- the personal data of a held row may not change (erasure is refused under a hold, as before)
select pg_temp.try($$update pv_docs set email = 'x' where id = 1$$);
reset role;
-- the owner, a superuser, replica mode; another tenant's row is not kept
select pg_temp.ctx('a', 'write');
set local role regress_owner;
update pv_docs set body = 'by the owner' where id = 1;
reset role;
update pv_docs set body = 'by a superuser' where id = 1;
set local session_replication_role = replica;
update pv_docs set body = 'in replica mode' where id = 1;
set local session_replication_role = origin;
update pv_docs set body = 'not held' where id = 3;
select * from pg_temp.kept();
select body from pv_docs order by id;
-- append-only for everyone, superusers and replica mode included
select pg_temp.try($$delete from warden.preserved_versions$$);
select pg_temp.try($$update warden.preserved_versions set old_row = '{}'$$);
select pg_temp.try($$truncate warden.preserved_versions$$);
set local session_replication_role = replica;
select pg_temp.try($$delete from warden.preserved_versions$$);
set local session_replication_role = origin;
-- who reads them: nobody but a tenant's admin (its tenant) and warden_auditor
select pg_temp.ctx('a', 'write');
set local role regress_app;
select count(*) as app_sees from warden.preserved_versions;
select pg_temp.try($$insert into warden.preserved_versions (tenant, table_name, row_identity, old_row, case_refs, holds) values ('x', 'x', '{}', '{}', '{}', '{}')$$);
reset role;
select pg_temp.ctx('a', 'admin');
set local role regress_app;
select count(*) as tenant_admin_sees from warden.preserved_versions;
reset role;
select pg_temp.ctx('b', 'admin');
set local role regress_app;
select count(*) as other_admin_sees from warden.preserved_versions;
reset role;
select check_name, ok, regexp_replace(detail, '\d+ prior', 'N prior') as detail from warden.verify_holds() where check_name = 'preserved versions';
-- the subject's export includes what the holds kept of their rows
select pg_temp.ctx('a', 'admin');
select jsonb_array_length(warden.export_subject('1') -> 'preserved_versions') as exported_versions,
       warden.export_subject('1') -> 'preserved_versions' -> 0 -> 'values' as exported_values;
-- discard: not while the hold stands; after the release, by an admin of the tenant
select pg_temp.try($$select warden.discard_preserved(id) from warden.holds where case_ref = 'REG-PV-1'$$);
select warden.release_hold(id, 'settled') from warden.holds where case_ref = 'REG-PV-1';
-- a second hold: what it keeps stays when the first one's versions are discarded
select warden.place_hold('REG-PV-2', 'second case', '00000000-0000-0000-0000-00000000000a') is not null as held;
update pv_docs set body = 'under two holds' where id = 2;
-- a writer of the tenant may not discard, nor may another tenant's admin
select id as pv1 from warden.holds where case_ref = 'REG-PV-1' \gset
select pg_temp.ctx('a', 'write');
set local role regress_app;
select pg_temp.try(format('select warden.discard_preserved(%L)', :'pv1'));
reset role;
select pg_temp.ctx('b', 'admin');
set local role regress_app;
select pg_temp.try(format('select warden.discard_preserved(%L)', :'pv1'));
reset role;
select pg_temp.ctx('a', 'admin');
-- the released hold's versions go; the one REG-PV-2 kept stays
select warden.discard_preserved(id) as discarded from warden.holds where case_ref = 'REG-PV-1';
select body, case_refs from pg_temp.kept();
select action, changes ->> 'case_ref' as case_ref, changes ->> 'versions' as versions
  from (select action, changes from warden.audit_pending union all select action, changes from warden.audit_events) e
 where action = 'discard_preserved';
-- after the last release, erasure anonymizes the subject's personal data in what is left
select warden.release_hold(id, 'settled') from warden.holds where case_ref = 'REG-PV-2';
select warden.erase_subject('2', 'Art. 17 request') -> 'preserved_versions' as erased_versions;
select old_row ->> 'email' as email, old_row ->> 'body' as body, erased_at is not null as erased from warden.preserved_versions;
rollback;
