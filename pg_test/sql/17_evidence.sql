-- No DDL quietly destroys evidence: statements that would empty, rewrite without their data,
-- detach, unguard or drop warden's own tables are refused to everyone (the superuser here), each
-- refusal an event; DROP EXTENSION and DROP SCHEMA warden while the trail holds young events;
-- under a hold, SET UNLOGGED, NO INHERIT and a column dropped by DROP TYPE ... CASCADE.
begin;
create function pg_temp.try(sql text) returns text language sql as $$
    select regexp_replace(regress_try(sql), '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g')
$$;
-- warden's tables, as the superuser
select pg_temp.try($$alter table warden.audit_events set unlogged$$);
select pg_temp.try($$alter table warden.holds set unlogged$$);
select pg_temp.try($$alter table warden.audit_events add column note text$$);
select pg_temp.try($$alter table warden.audit_events alter column action drop not null$$);
select pg_temp.try($$alter table warden.consents drop constraint consents_pkey$$);
select pg_temp.try($$alter table warden.audit_events disable trigger all$$);
select pg_temp.try($$alter table warden.deleted_accounts disable row level security$$);
select pg_temp.try($$alter table warden.keyring owner to regress_app$$);
select pg_temp.try($$create trigger t before insert on warden.audit_pending for each row execute function suppress_redundant_updates_trigger()$$);
select pg_temp.try($$create rule r as on insert to warden.audit_pending do instead nothing$$);
select pg_temp.try($$create policy p on warden.audit_events for select using (true)$$);
select pg_temp.try($$alter table warden.audit_events rename to old_events$$);
select pg_temp.try($$alter table warden.hold_releases set schema public$$);
select pg_temp.try($$alter schema warden rename to old_warden$$);
select pg_temp.try($$truncate warden.consents$$);
select pg_temp.try($$drop table warden.audit_checkpoints$$);
select pg_temp.try($$drop trigger audit_events_immutable on warden.audit_events$$);
select pg_temp.try($$alter extension warden drop table warden.audit_events$$);
-- the trail holds events younger than warden.audit_retention
select warden.log_event('regress_evidence', 'test', '1');
select pg_temp.try($$drop extension warden cascade$$);
select pg_temp.try($$drop schema warden cascade$$);
-- each refusal on record, after its rollback
select c->>'operation' as operation, resource_id, count(*)
  from (select changes::jsonb c, resource_id from warden.audit_events where action = 'evidence_protected'
        union all select changes::jsonb, resource_id from warden.audit_pending where action = 'evidence_protected') e
 group by 1, 2 order by 1, 2;

-- under a hold: a table's evidence kept from SET UNLOGGED, NO INHERIT and a cascaded column drop
create type pg_temp.mood as enum ('ok', 'bad');
create table ev_docs (id int primary key, tenant_id uuid not null, body text, m pg_temp.mood);
create table ev_parent (id int, tenant_id uuid not null);
create table ev_child () inherits (ev_parent);
insert into ev_docs values (1, '00000000-0000-0000-0000-00000000000a', 'evidence', 'ok');
insert into ev_child values (1, '00000000-0000-0000-0000-00000000000a');
select warden.protect_table('ev_docs'), warden.protect_table('ev_parent'), warden.protect_table('ev_child');
select warden.place_hold('REG-EV-1', 'evidence', '00000000-0000-0000-0000-00000000000a') is not null as held;
select pg_temp.try($$alter table ev_docs set unlogged$$);
select pg_temp.try($$alter table ev_child no inherit ev_parent$$);
select pg_temp.try($$drop type pg_temp.mood cascade$$);
select count(*) as columns from pg_attribute where attrelid = 'ev_docs'::regclass and attnum > 0 and not attisdropped;
-- a table no hold covers may still go unlogged
create table ev_scratch (id int);
alter table ev_scratch set unlogged;
-- still allowed on warden's tables: storage parameters, statistics, SET LOGGED (last: they lock the
-- trail until the rollback)
alter table warden.audit_events set (autovacuum_vacuum_scale_factor = 0.01);
alter table warden.audit_events reset (autovacuum_vacuum_scale_factor);
alter table warden.audit_events alter column action set statistics 200;
alter table warden.audit_events set logged;
rollback;
