-- Data classification: levels per schema and table with inheritance, CONFIDENTIAL and PHI refused
-- until protected and audited, DDL and functions that would weaken them refused afterwards, and
-- every read of a PHI table recorded (rows returned, statement id) without a write per row.
begin;
create function pg_temp.try(sql text) returns text language sql as $$ select regress_try(sql) $$;
create function pg_temp.ctx(t text, a text, lvl text) returns void language sql as $$
    select warden.set_context(('00000000-0000-0000-0000-00000000000' || t)::uuid,
                              ('00000000-0000-0000-0000-00000000000' || a)::uuid, lvl)
$$;
set local role regress_owner;
create schema cl_clinic;
create table cl_clinic.patients (id int primary key, tenant_id uuid not null, name text, dx text);
create table cl_clinic.visits (id int primary key, tenant_id uuid not null, note text);
create table cl_clinic.codes (code text primary key, label text);

-- Levels are exact; targets are schemas or tables the caller owns
select pg_temp.try($$select warden.classify('cl_clinic', 'phi')$$);
select pg_temp.try($$select warden.classify('cl_nowhere', 'PHI')$$);
select pg_temp.try($$select warden.classify('pg_catalog.pg_class', 'PUBLIC')$$);
select pg_temp.try($$select warden.classify(null, 'PHI')$$);
-- CONFIDENTIAL and PHI need protection and auditing first, with the fix in the hint
select pg_temp.try($$select warden.classify('cl_clinic.patients', 'PHI')$$);
select pg_temp.try($$select warden.classify('cl_clinic', 'CONFIDENTIAL')$$);
select warden.protect_table('cl_clinic.patients'), warden.protect_table('cl_clinic.visits');
select pg_temp.try($$select warden.classify('cl_clinic.patients', 'PHI')$$);
select warden.enable_audit('cl_clinic.patients'), warden.enable_audit('cl_clinic.visits');
select warden.classify('cl_clinic.patients', 'PHI');
-- codes is reference data: classified PUBLIC itself, so the schema's level does not reach it
select warden.classify('cl_clinic.codes', 'PUBLIC');
select warden.classify('cl_clinic', 'CONFIDENTIAL');
select warden.classify('cl_clinic.codes', 'INTERNAL');
select target_type, target, level, source, protected, audited, compliant
  from warden.classifications where target like 'cl_clinic%' order by target_type, target;

-- What would weaken a classified table is refused, by function and by DDL
select pg_temp.try($$select warden.unprotect_table('cl_clinic.patients')$$);
reset role;
select pg_temp.ctx('a', '1', 'admin');
set local role regress_owner;
select pg_temp.try($$select warden.disable_audit('cl_clinic.visits')$$);
select pg_temp.try($$alter table cl_clinic.patients disable trigger warden_audit_row$$);
select pg_temp.try($$alter table cl_clinic.visits no force row level security$$);
select pg_temp.try($$alter table cl_clinic.visits disable row level security$$);
select pg_temp.try($$drop policy warden_select on cl_clinic.visits$$);
select pg_temp.try($$alter policy warden_select on cl_clinic.visits rename to mine$$);
select pg_temp.try($$drop trigger warden_audit_row on cl_clinic.patients$$);
select pg_temp.try($$create policy wide on cl_clinic.visits for select using (true)$$);
-- other DDL goes on
alter table cl_clinic.visits add column seen_at timestamptz;
-- lowering the level first is the owner's explicit decision
select warden.classify('cl_clinic.visits', 'INTERNAL');
select pg_temp.try($$alter table cl_clinic.visits no force row level security$$);
grant usage on schema cl_clinic to regress_app;
grant select, insert, update, delete on cl_clinic.patients, cl_clinic.visits to regress_app;
reset role;

-- PHI reads: one event per statement and table, with the rows it returned
insert into cl_clinic.patients select g, '00000000-0000-0000-0000-00000000000a', 'p' || g, 'dx' from generate_series(1, 40) g;
insert into cl_clinic.patients values (41, '00000000-0000-0000-0000-00000000000b', 'other', 'dx');
select coalesce(max(id), 0) as base from warden.audit_events \gset
create temp table phi_base as select :base::bigint as b;
select pg_temp.ctx('a', '1', 'read');
set local role regress_app;
select count(*) from cl_clinic.patients;
select name from cl_clinic.patients where id <= 3 order by id;
select count(*) from cl_clinic.visits;
select count(*) from (select p.id from cl_clinic.patients p join cl_clinic.visits v on v.id = p.id) j;
explain (costs off) select * from cl_clinic.patients;
-- through a view, a function and a cursor: still the PHI table's reads
reset role;
create view cl_clinic.patient_names with (security_barrier) as select id, name from cl_clinic.patients;
create function cl_clinic.patient_count() returns bigint language sql stable as $$ select count(*) from cl_clinic.patients $$;
grant select on cl_clinic.patient_names to regress_app;
set local role regress_app;
select count(*) from cl_clinic.patient_names where id > 35;
select cl_clinic.patient_count();
declare c cursor for select name from cl_clinic.patients order by id;
fetch 2 from c;
fetch 3 from c;
close c;
-- and in parallel: one event from the leader, none from its workers
reset role;
set local parallel_setup_cost = 0;
set local parallel_tuple_cost = 0;
set local min_parallel_table_scan_size = 0;
set local max_parallel_workers_per_gather = 2;
set local role regress_app;
select count(*) from cl_clinic.patients where dx like 'd%';
reset role;
reset max_parallel_workers_per_gather;
reset parallel_setup_cost;
reset parallel_tuple_cost;
reset min_parallel_table_scan_size;
set local role regress_app;
reset role;
select pg_temp.ctx('a', '1', 'write');
set local role regress_app;
update cl_clinic.patients set dx = 'flu' where id = 2;
insert into cl_clinic.patients values (42, '00000000-0000-0000-0000-00000000000a', 'new', 'dx');
-- (a statement that fails after its read started is recorded at the end of its transaction, with
-- status error: tests/classify.rs)
reset role;
-- the events are queued for the sealing worker, which commits them apart from this transaction
-- (within warden.audit_seal_interval; waited for here, up to 20 s on a slow machine)
do $$
begin
    for i in 1..200 loop
        exit when (select count(*) from (select action from warden.audit_pending
                                         union all select action from warden.audit_events
                                          where id > (select b from phi_base)) e
                    where e.action = 'phi_read') >= 8;
        perform pg_sleep(0.1);
    end loop;
end
$$;
select e.action, e.status, e.resource_type, e.resource_id, e.changes ->> 'rows' as rows,
       e.changes ? 'statement_id' as has_statement_id, e.tenant, e.actor
  from (select action, status, resource_type, resource_id, changes::jsonb as changes, tenant, actor from warden.audit_pending
        union all
        select action, status, resource_type, resource_id, changes, tenant, actor from warden.audit_events where id > :base) e
 where e.action = 'phi_read' order by (e.changes ->> 'rows')::int nulls last, e.status;
select count(distinct e.changes ->> 'statement_id') as distinct_statements
  from (select changes::jsonb as changes, action from warden.audit_pending
        union all select changes, action from warden.audit_events where id > :base) e
 where e.action = 'phi_read';
-- COPY of a PHI table by a role that bypasses row level security (the superuser here; pg_dump)
-- runs without the executor: the utility hook records it, with the rows copied; COPY (SELECT ...)
-- goes through the executor and is recorded there
reset role;
select warden.clear_context();
create temp table phi_before as select count(*) as n from (select action from warden.audit_pending union all
       select action from warden.audit_events) e where e.action = 'phi_read';
copy cl_clinic.patients to '/dev/null';
copy (select id from cl_clinic.patients where id <= 4) to '/dev/null';
copy cl_clinic.codes to '/dev/null';
do $$
begin
    for i in 1..200 loop
        exit when (select count(*) from (select action from warden.audit_pending
                                         union all select action from warden.audit_events) e
                    where e.action = 'phi_read') >= (select n from phi_before) + 2;
        perform pg_sleep(0.1);
    end loop;
end
$$;
select e.resource_id, e.changes ->> 'rows' as rows, e.status, e.tenant
  from (select occurred_at, action, status, resource_id, changes, tenant from warden.audit_pending
        union all select occurred_at, action, status, resource_id, changes, tenant from warden.audit_events) e
 where e.action = 'phi_read' order by e.occurred_at desc, (e.changes ->> 'rows')::int limit 2;
rollback;
