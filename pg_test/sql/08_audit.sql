-- The audit trail: what is recorded, by whom it is read, that nobody can change it, and how it is
-- verified. Events are sealed in this transaction with warden.seal_audit() (the worker would seal
-- them after COMMIT); ids are shown relative to the events already there.
begin;
select warden.seal_audit() >= 0 as sealed_earlier_events;
select coalesce(max(id), 0) as base from warden.audit_events \gset
create temp table base as select :base::bigint as b;
-- e(): the events since the start of this file, without what varies between runs (time, hashes,
-- backend pid, transaction id)
create function pg_temp.e() returns table (n bigint, tenant text, actor text, action text,
                                           resource_type text, resource_id text, status text,
                                           changes jsonb, role text)
language sql as $$
    select id - b, right(tenant::text, 1), right(actor::text, 1), action, resource_type,
           resource_id, status, changes, context->>'database_role'
      from warden.audit_events, pg_temp.base where id > b order by id
$$;

set local role regress_owner;
create table acct (id int primary key, tenant_id uuid not null, name text, password_hash text, balance numeric);
create table log_lines (tenant_id uuid not null, line text);   -- no primary key
create view acct_view as select * from acct;
grant select, insert, update, delete on acct, log_lines to regress_app;
select warden.protect_table('acct');
select warden.protect_table('log_lines');

-- enable_audit: its errors
select regress_try($$select warden.enable_audit('acct_view')$$);
select regress_try($$select warden.enable_audit('acct', '{no_such_column}')$$);
select regress_try($$select warden.enable_audit(null)$$);
reset role;
set local role regress_app;
select regress_try($$select warden.enable_audit('acct')$$);
reset role;
set local role regress_owner;

-- enable_audit: triggers on the table, ALWAYS (session_replication_role cannot skip them); idempotent
select warden.enable_audit('acct', '{password_hash}');
select warden.enable_audit('acct', '{password_hash}');
select warden.enable_audit('log_lines');
select tgname, tgenabled, pg_get_triggerdef(oid) from pg_trigger where tgrelid = 'acct'::regclass and tgname like 'warden%' order by 1;
select relid, kind, partition_of, redacted_columns, enabled from warden.audited_tables order by relid::text;

-- data modifications by the application, in its tenant's context
reset role;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'delete');
set local role regress_app;
insert into acct values (1, '00000000-0000-0000-0000-00000000000a', 'Ada', 'bcrypt$secret', 10.50);
update acct set balance = 11.00, password_hash = 'bcrypt$other' where id = 1;
update acct set name = name where id = 1;   -- nothing changed: an event with no columns
delete from acct where id = 1;
insert into log_lines values ('00000000-0000-0000-0000-00000000000a', 'no key');
select warden.log_event('export_started', 'report', 'r-7', '{"rows": 3, "format": "csv"}');
select warden.log_event('login_blocked', 'actor', null, '{}', 'denied');
select regress_try($$select warden.log_event('x', 'y', 'z', '{}', 'maybe')$$);
select regress_try($$select warden.log_event(' ', 'y', 'z')$$);
reset role;
select warden.seal_audit() > 0 as sealed;
select * from pg_temp.e();

-- TRUNCATE (the owner's) and partitioned tables, including a partition created later
set local role regress_owner;
truncate log_lines;
create table ledger (tenant_id uuid not null, at date not null, amount int) partition by range (at);
create table ledger_2026 partition of ledger for values from ('2026-01-01') to ('2027-01-01');
select warden.enable_audit('ledger');
create table ledger_2027 partition of ledger for values from ('2027-01-01') to ('2028-01-01');
select tgrelid::regclass, tgname, tgenabled from pg_trigger
 where tgrelid::regclass::text like 'ledger%' and tgname like 'warden%' order by 1, 2;
insert into ledger values ('00000000-0000-0000-0000-00000000000a', '2027-05-01', 5);
set local datestyle = 'SQL, DMY';
update ledger set at = '2027-05-02';   -- dates are ISO 8601 in the trail, whatever the DateStyle
reset role;
select warden.seal_audit() > 0 as sealed;
select n, action, resource_type, resource_id, changes from pg_temp.e() where n > 9;
reset datestyle;

-- authorization changes and administrative actions, without any call from the application;
-- passwords never reach the trail (a DBA's session: no tenant context)
select warden.clear_context();
create role regress_temp_role login password 'hunter2';
alter role regress_temp_role password 'hunter3';
grant select on acct to regress_temp_role;
revoke select on acct from regress_temp_role;
grant regress_app to regress_temp_role;
create policy extra on acct for select using (true);
drop policy extra on acct;
alter table acct no force row level security;
alter table acct force row level security;
alter table acct disable trigger warden_audit_row;
alter table acct enable trigger warden_audit_row;
alter table log_lines disable trigger user;    -- audited too
create table not_audited (x int);
alter table not_audited disable trigger all;   -- not an audited table: not recorded
drop role regress_temp_role;
select warden.seal_audit() > 0 as sealed;
select n, action, resource_type, resource_id, changes->>'statement' as statement, role
  from pg_temp.e() where n > 16;

-- nobody changes the trail: not the application, not the owner, not a superuser, not in replica mode
select regress_try('update warden.audit_events set action = action');
select regress_try('delete from warden.audit_events');
select regress_try('truncate warden.audit_events');
select regress_try('delete from warden.audit_pending');
select regress_try('update warden.audit_checkpoints set purged = 0');
set local session_replication_role = replica;
select regress_try('delete from warden.audit_events');
reset session_replication_role;
set local role regress_app;
select regress_try('update warden.audit_events set action = action');
select regress_try('insert into warden.audit_pending (occurred_at, action, status) values (now(), $$forged$$, $$success$$)');
reset role;

-- verification: intact; digests; a digest that does not hold
select intact, checked > 0 as checked_some, first_bad_id, reason from warden.verify_audit();
select intact, checked, first_bad_id, reason from warden.verify_audit(:base + 1, :base + 3);
select id - :base as head from warden.audit_digest();
select holds, first_bad_id - :base as first_bad, reason from warden.verify_audit_digest((select id from warden.audit_digest()), (select hash from warden.audit_digest()));
select holds, first_bad_id - :base as first_bad, replace(reason, (:base + 1)::text, 'N') as reason
  from warden.verify_audit_digest(:base + 1, '\x00');
select holds, reason like 'event % is missing: the chain ends at %' as tail_cut
  from warden.verify_audit_digest((select id + 5 from warden.audit_digest()), '\x00');
select count(*) as exported, min((e->>'id')::bigint) - :base as first, bool_and(e ? 'hash' and e ? 'prev_hash') as hashes
  from warden.audit_export(:base, 5) e;

-- the lookups compliance staff make use the indexes (by tenant and time, by actor, by resource)
set local enable_seqscan = off;
explain (costs off) select id from warden.audit_events
 where tenant = '00000000-0000-0000-0000-00000000000a' and occurred_at >= now() - interval '1 day';
explain (costs off) select id from warden.audit_events
 where actor = '00000000-0000-0000-0000-000000000001' order by occurred_at desc limit 10;
explain (costs off) select id from warden.audit_events
 where resource_type = 'public.acct' and resource_id = '1';
reset enable_seqscan;

-- who may do what
set local role regress_app;
select regress_try('select * from warden.verify_audit()');
select regress_try('select * from warden.audit_digest()');
select regress_try('select * from warden.audit_export(0)');
select regress_try('select warden.purge_audit()');
select regress_try('select warden.seal_audit()');
select regress_try('select * from warden.audit_queue_status()');
-- the trail as people read it: nothing without a context, nothing below admin level...
select count(*) from warden.audit_trail;
reset role;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'delete');
set local role regress_app;
select count(*) from warden.audit_trail;
-- ...a tenant's admin its own tenant's events
reset role;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'admin');
set local role regress_app;
select count(*) > 0 as sees_some, bool_and(tenant = '00000000-0000-0000-0000-00000000000a') as only_its_own from warden.audit_trail;
select action, status, events from warden.audit_summary(now() - interval '1 hour', now() + interval '1 hour') where tenant is not null order by 1, 2;
reset role;
select warden.set_context('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000002', 'admin');
set local role regress_app;
select count(*) from warden.audit_trail;
-- warden_auditor reads every tenant's events, and may verify
reset role;
select warden.clear_context();
set local role warden_auditor;
select count(distinct tenant) >= 1 as tenants, count(*) filter (where tenant is null) > 0 as untenanted from warden.audit_trail where id > :base;
select intact from warden.verify_audit();
select regress_try('select * from acct');
reset role;

-- disable_audit needs admin level (or a superuser) and is itself an event
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'delete');
set local role regress_owner;
select regress_try($$select warden.disable_audit('acct')$$);
reset role;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'admin');
set local role regress_owner;
select warden.disable_audit('acct');
select warden.disable_audit('acct');
select relid from warden.audited_tables order by 1;
reset role;
select warden.seal_audit() > 0 as sealed;
select action, tenant, resource_type, resource_id from pg_temp.e() order by n desc limit 1;
select intact from warden.verify_audit();

-- purge_audit: nothing is old enough here (see the #[pg_test] for a purge that removes events)
select warden.purge_audit();
rollback;
