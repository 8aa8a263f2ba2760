-- Citus (README, "Running on Citus"; the cluster itself is tested by hand): what legal holds on
-- distributed tables rely on that a single node shows.
begin;
-- warden.citus_setup(): for superusers; without Citus, 0A000 with the way to set it up
set local role regress_app;
select regress_try($$select * from warden.citus_setup()$$);
reset role;
select regress_try($$select * from warden.citus_setup()$$);
-- the tables it replicates carry the trigger Citus copies to every placement, enabled ALWAYS (a
-- write arriving from the coordinator invalidates a worker's cached holds and registry)
select tgrelid::regclass, tgname, tgenabled, pg_get_triggerdef(oid) as definition
  from pg_trigger where tgname = 'warden_changed' order by 1;
-- no foreign key between the hold tables (Citus would convert them to local tables first, which
-- drops the views on them); release_hold checks the hold exists itself
select count(*) as foreign_keys from pg_constraint where conrelid = 'warden.hold_releases'::regclass and contype = 'f';
select regress_try($$select warden.release_hold('00000000-0000-0000-0000-0000000000ff', 'no such hold')$$);
-- a table named like a Citus shard is no shard without Citus: its guards decide as on any table
create table docs_102008 (id int primary key, tenant_id uuid not null, body text);
select warden.protect_table('docs_102008') is not null as protected;
insert into docs_102008 values (1, 'aaaaaaaa-0000-0000-0000-00000000000a', 'a'), (2, 'bbbbbbbb-0000-0000-0000-00000000000b', 'b');
select warden.place_hold('C-21', 'test', 'aaaaaaaa-0000-0000-0000-00000000000a') is not null as placed;
select tgname, tgenabled from pg_trigger where tgrelid = 'docs_102008'::regclass and tgname like 'warden_hold%' order by 1;
select regress_try($$delete from docs_102008 where id = 2$$);
select warden.set_context('bbbbbbbb-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000001', 'delete') is not null as context;
select regress_try($$delete from docs_102008 where id = 2$$);
select warden.set_context('aaaaaaaa-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'delete') is not null as context;
select regexp_replace(regress_try($$delete from docs_102008 where id = 1$$), 'release_hold\(''[0-9a-f-]+''', 'release_hold(''<hold>''') as refused;
select check_name, ok from warden.verify_holds() where hold is not null order by 1;
-- the cluster's trail and its verification answer for this node alone without Citus ('local')
select node, intact is not null as answered from warden.verify_cluster_audit();
select bool_and(node = 'local') is not false as local
  from warden.cluster_audit_trail(now() - interval '1 day', now() + interval '1 minute');
select regress_try($$select * from warden.cluster_audit_trail(now(), now() - interval '1 day')$$);
set local role regress_app;
select regress_try($$select * from warden.verify_cluster_audit()$$);
select regress_try($$select * from warden.cluster_audit_trail()$$);
reset role;
rollback;
