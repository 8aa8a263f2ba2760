-- Legal holds: who may place and release them, every destructive path refused while one covers
-- the data (as the application and as the table owner), each refusal an event that survives the
-- refused statement, fail closed, and the same operations succeeding after the release.
begin;
-- try(): regress_try with the random ids (holds, tenants in messages) masked
create function pg_temp.try(sql text) returns text language sql as $$
    select regexp_replace(regexp_replace(regress_try(sql),
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g'), 'RI_ConstraintTrigger_\w+', 'RI_ConstraintTrigger_<n>', 'g')
$$;
-- violations(): the hold_violation events of this file's case refs, committed by the worker
-- although each refused statement was rolled back
create function pg_temp.violations() returns table (operation text, tbl text, case_ref text, reason text, n bigint)
language sql as $$
    select c->>'operation', c->>'table', c->>'case_ref', c->>'reason', count(*)
      from (select changes::jsonb c from warden.audit_events where action = 'hold_violation'
            union all select changes::jsonb from warden.audit_pending where action = 'hold_violation') e
     where c->>'case_ref' like 'REG-%' or c->>'case_ref' is null
     group by 1, 2, 3, 4 order by 1, 2, 3, 4
$$;
-- as(tenant digit, level): the context of tenant ...000a or ...000b, actor ...0001
create function pg_temp.ctx(t text, lvl text) returns void language sql as $$
    select warden.set_context(('00000000-0000-0000-0000-00000000000' || t)::uuid,
                              '00000000-0000-0000-0000-000000000001', lvl)
$$;

set local role regress_owner;
create table h_docs (id int primary key, tenant_id uuid not null, body text);
create table h_notes (id int primary key, doc int references h_docs on delete cascade, tenant_id uuid not null, body text);
create table h_events (id int, tenant_id uuid not null, at date not null) partition by range (at);
create table h_events_2025 partition of h_events for values from ('2025-01-01') to ('2026-01-01');
create table h_events_2026 partition of h_events for values from ('2026-01-01') to ('2027-01-01');
create table h_plain (id int, tenant_id uuid);
create view h_docs_v as select * from h_docs;
select warden.protect_table('h_docs'), warden.protect_table('h_notes'), warden.protect_table('h_events');
grant select, insert, update, delete on h_docs, h_notes, h_events, h_docs_v to regress_app;
reset role;
insert into h_docs select g, ('00000000-0000-0000-0000-00000000000' || case when g % 2 = 0 then 'a' else 'b' end)::uuid, 'doc ' || g
  from generate_series(1, 6) g;
insert into h_notes select g, g, tenant_id, 'note' from h_docs g(g, tenant_id);
insert into h_events select g, tenant_id, date '2025-06-01' + g * 50 from h_docs g(g, tenant_id);

-- protect_table put the guards on every table of each tree: per row on leaves, per statement on all
select tgrelid::regclass, tgname, tgenabled from pg_trigger where tgname like 'warden_hold%' order by 1, 2;

-- Placing: admin level in the hold's tenant, or warden_admin; never for another tenant
select pg_temp.ctx('a', 'delete');
set local role regress_app;
select pg_temp.try($$select warden.place_hold('REG-1', 'litigation', '00000000-0000-0000-0000-00000000000a')$$);
reset role;
select pg_temp.ctx('b', 'admin');
set local role regress_app;
select pg_temp.try($$select warden.place_hold('REG-1', 'litigation', '00000000-0000-0000-0000-00000000000a')$$);
select pg_temp.try($$select warden.place_hold('', 'litigation', '00000000-0000-0000-0000-00000000000b')$$);
select pg_temp.try($$select warden.place_hold('REG-1', 'litigation', '00000000-0000-0000-0000-00000000000b', 'h_plain')$$);
reset role;
select pg_temp.ctx('a', 'admin');
set local role regress_app;
select warden.place_hold('REG-1', 'litigation', '00000000-0000-0000-0000-00000000000a') is not null as placed;
-- the view: the tenant's admin sees its holds; another level sees none
select case_ref, reason, tenant, tbl, subject, scope, active, placed_by, placed_by_role from warden.legal_holds;
reset role;
select pg_temp.ctx('a', 'write');
set local role regress_app;
select count(*) as seen_by_write_level from warden.legal_holds;
-- nobody writes the holds directly, superusers included
select pg_temp.try($$insert into warden.holds (id, case_ref, reason, tenant, placed_at, placed_by_role) values (gen_random_uuid(), 'x', 'x', gen_random_uuid(), now(), 'x')$$);
reset role;
select pg_temp.try($$update warden.holds set case_ref = 'gone'$$);
select pg_temp.try($$delete from warden.hold_releases$$);
select pg_temp.try($$truncate warden.holds cascade$$);
select baseline from warden.holds where case_ref = 'REG-1';

-- The application, with delete level in tenant a: every way to delete a held row is refused
select pg_temp.ctx('a', 'delete');
set local role regress_app;
select pg_temp.try($$delete from h_docs where id = 2$$);
select pg_temp.try($$delete from h_docs_v where id = 2$$);
select pg_temp.try($$with gone as (delete from h_docs where id = 4 returning id) select count(*) from gone$$);
select pg_temp.try($$merge into h_docs d using (select 2 as id) s on d.id = s.id when matched then delete$$);
select pg_temp.try($$delete from h_events where id = 2$$);
-- erasing the tenant's ownership of a row is refused too; other columns still change
select pg_temp.try($$update h_docs set tenant_id = '00000000-0000-0000-0000-00000000000b' where id = 2$$);
update h_docs set body = 'edited' where id = 2;
reset role;
-- tenant b's rows are not held
select pg_temp.ctx('b', 'delete');
set local role regress_app;
delete from h_docs where id = 1;
reset role;
select warden.clear_context();

-- The table owner (and a superuser): every other way to destroy the data
set local role regress_owner;
select pg_temp.try($$truncate h_notes$$);
select pg_temp.try($$truncate h_docs cascade$$);
select pg_temp.try($$truncate h_events$$);
select pg_temp.try($$drop table h_notes$$);
select pg_temp.try($$drop table h_events_2025$$);
select pg_temp.try($$alter table h_events detach partition h_events_2026$$);
select pg_temp.try($$alter table h_notes drop column body$$);
select pg_temp.try($$alter table h_notes disable trigger all$$);
select pg_temp.try($$alter table h_notes disable trigger warden_hold_row$$);
select pg_temp.try($$alter table h_notes enable trigger warden_hold_row$$);
select pg_temp.try($$drop trigger warden_hold_statement on h_notes$$);
select pg_temp.try($$select warden.unprotect_table('h_notes')$$);
select pg_temp.try($$set session_replication_role = replica$$);
select pg_temp.try($$delete from h_docs$$);
reset role;
select pg_temp.try($$drop schema public cascade$$);
select pg_temp.try($$drop extension warden cascade$$);
select pg_temp.try($$alter table h_notes disable trigger all$$);
set local session_replication_role = replica;
select pg_temp.ctx('a', 'admin');
select pg_temp.try($$delete from h_docs where id = 2$$);
set local session_replication_role = origin;
-- the guards still stand, the rows are all there
select tgrelid::regclass, tgname, tgenabled from pg_trigger where tgname like 'warden_hold%' order by 1, 2;
select count(*) as held_docs from h_docs where tenant_id = '00000000-0000-0000-0000-00000000000a';

-- Fail closed: when the guard cannot read the holds, or there is no verified context
revoke select on warden.holds from warden_guard;
select pg_temp.ctx('b', 'delete');
set local role regress_app;
select pg_temp.try($$delete from h_docs where id = 3$$);
reset role;
grant select on warden.holds to warden_guard;
select warden.clear_context();
select pg_temp.try($$delete from h_docs where id = 3$$);

-- Every refusal above is an event, although each statement was rolled back
select * from pg_temp.violations();

-- verify_holds: all well
select check_name, ok, detail from warden.verify_holds() order by hold nulls first, check_name;

-- Releasing: the tenant's admin (or warden_admin); then the same operations succeed
select id as hold from warden.holds where case_ref = 'REG-1' \gset
select pg_temp.ctx('a', 'write');
set local role regress_app;
select pg_temp.try(format('select warden.release_hold(%L, %L)', :'hold', 'settled'));
reset role;
select pg_temp.ctx('a', 'admin');
set local role regress_app;
select pg_temp.try(format('select warden.release_hold(%L, %L)', :'hold', ''));
select warden.release_hold(:'hold', 'settled');
select pg_temp.try(format('select warden.release_hold(%L, %L)', :'hold', 'again'));
select pg_temp.try($$select warden.release_hold('00000000-0000-0000-0000-000000000000', 'unknown')$$);
select case_ref, active, release_reason, released_by_role from warden.legal_holds;
delete from h_docs where id = 2;
reset role;
set local role regress_owner;
truncate h_notes;
alter table h_events detach partition h_events_2026;
drop table h_events_2026;
reset role;

-- A hold on one table, and on one table's partition tree
select warden.place_hold('REG-2', 'notes only', '00000000-0000-0000-0000-00000000000a', 'h_notes') is not null as placed;
select warden.place_hold('REG-3', 'events', '00000000-0000-0000-0000-00000000000a', 'h_events') is not null as placed;
insert into h_notes values (10, 4, '00000000-0000-0000-0000-00000000000a', 'n');
select pg_temp.ctx('a', 'delete');
set local role regress_app;
-- the row in h_docs is not held, but deleting it would cascade into held h_notes
select pg_temp.try($$delete from h_docs where id = 4$$);
delete from h_docs where id = 6;
select pg_temp.try($$delete from h_events where id = 2$$);
reset role;
select scope, table_name, active from warden.legal_holds where active order by case_ref;
rollback;
