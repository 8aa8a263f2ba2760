-- Personal data and GDPR rights: registration and its errors, audit events that never carry a
-- registered value (keyed hashes for rectification), erasure refused under a legal hold and
-- leaving no erased value behind, export, consent usable in policies, account deletion.
begin;
create function pg_temp.try(sql text) returns text language sql as $$
    select regexp_replace(regexp_replace(regress_try(sql),
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g'), '\d{10} \(Unix time\)', '<t> (Unix time)', 'g')
$$;
-- ctx(tenant digit, actor digit, level)
create function pg_temp.ctx(t text, a text, lvl text) returns void language sql as $$
    select warden.set_context(('00000000-0000-0000-0000-00000000000' || t)::uuid,
                              ('00000000-0000-0000-0000-00000000000' || a)::uuid, lvl)
$$;
-- ev(): the events of this file, sealed or not (this transaction's are pending until it ends;
-- refusals recorded autonomously are committed by the worker and sealed soon after)
select coalesce(max(id), 0) as base from warden.audit_events \gset
create temp table base as select :base::bigint as b;
create function pg_temp.ev() returns table (action text, status text, resource_type text, changes jsonb)
language sql as $$
    select action, status, resource_type, changes::jsonb from warden.audit_pending
    union all select action, status, resource_type, changes from warden.audit_events, pg_temp.base where id > b
$$;

set local role regress_owner;
create table p_users (id uuid primary key, tenant_id uuid not null, email text, name text not null,
                      phone varchar(20), age int, plan text);
create table p_members (tenant_id uuid not null, actor_id uuid not null, role text not null);
create table p_plain (id uuid, email text);
create table p_mail (tenant_id uuid not null, subject uuid not null, body text, sent_on date default '2026-01-01');
select warden.protect_table('p_users'), warden.protect_table('p_members'), warden.protect_table('p_mail');
select warden.enable_audit('p_users');
grant select, insert, update, delete on p_users, p_members, p_mail to regress_app;

-- Registration: the table's owner, a protected table, a uuid subject column, a method each
-- column can take
select warden.register_personal_data('p_users', 'id', '{email}', 'hash');
select warden.register_personal_data('p_users', 'id', '{name}', 'redact');
select warden.register_personal_data('p_users', 'id', '{phone}', 'constant:n/a');
select warden.register_personal_data('p_users', 'id', '{age}');
select pg_temp.try($$select warden.register_personal_data('p_plain', 'id', '{email}')$$);
select pg_temp.try($$select warden.register_personal_data('p_mail', 'nope', '{body}')$$);
select pg_temp.try($$select warden.register_personal_data('p_mail', 'sent_on', '{body}')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'email', '{name}')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{name}', 'null')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{phone}', 'hash')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{age}', 'redact')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{age}', 'constant:old')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{age}', 'mask')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{tenant_id}')$$);
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{}')$$);
reset role;
set local role regress_app;
select pg_temp.try($$select warden.register_personal_data('p_users', 'id', '{plan}')$$);
select pg_temp.try($$select warden._pseudonym('guess@example.com')$$);
reset role;
select tbl, column_name, subject_column, method from warden.personal_data order by 1, 2;

-- The application writes personal data; the trail keeps keyed hashes, never a value
select pg_temp.ctx('a', '1', 'delete');
set local role regress_app;
insert into p_users values ('00000000-0000-0000-0000-000000000005', '00000000-0000-0000-0000-00000000000a', 'sam@example.com', 'Sam', '555-0100', 41, 'pro'),
                           ('00000000-0000-0000-0000-000000000006', '00000000-0000-0000-0000-00000000000a', 'tia@example.com', 'Tia', '555-0101', 29, 'free');
-- rectification (Art. 16): an ordinary UPDATE
update p_users set email = 'samuel@example.com', plan = 'team' where name = 'Sam';
reset role;
select e.action, e.changes #>> '{old,email}' = 'hmac:' || warden._pseudonym('sam@example.com') as old_email_is_its_keyed_hash,
       e.changes #>> '{new,email}' = 'hmac:' || warden._pseudonym('samuel@example.com') as new_email_is_its_keyed_hash,
       e.changes -> 'old' ->> 'plan' as old_plan, e.changes -> 'new' ->> 'plan' as new_plan
  from pg_temp.ev() e where e.action = 'update';
select count(*) filter (where changes::text ~ '(sam|samuel|tia)@example|"Sam"|"Tia"|555-01') as events_with_a_value,
       count(*) as events
  from pg_temp.ev() where resource_type = 'public.p_users';

-- the owner's own trigger on the table: erasure runs it with the owner's rights, never more
set local role regress_owner;
create table p_who (who text);
create function p_who_fn() returns trigger language plpgsql as $$ begin insert into public.p_who values (current_user); return new; end $$;
create trigger p_who_t before update on p_users for each row execute function p_who_fn();
grant insert on p_who to regress_app;
reset role;

-- Erasure refused while a hold covers the subject (Art. 17(3)(e)), and recorded
select pg_temp.ctx('a', '1', 'admin');
select warden.place_hold('REG-P', 'subject dispute', '00000000-0000-0000-0000-00000000000a',
                         subject => '00000000-0000-0000-0000-000000000005') is not null as placed;
set local role regress_app;
select pg_temp.try($$select warden.erase_subject('00000000-0000-0000-0000-000000000005', 'Art. 17 request')$$);
-- the guard stands behind it: erasing by hand is refused too
select pg_temp.try($$update p_users set email = null where name = 'Sam'$$);
select pg_temp.try($$delete from p_users where name = 'Sam'$$);
reset role;
select action, status, changes->>'case_ref' as case_ref, changes->>'reason' as reason
  from pg_temp.ev() where action = 'erase_subject';
select name, email, phone, age from p_users order by name;
-- a subject the hold does not cover is erased; the report holds no value
set local role regress_app;
select jsonb_pretty(warden.erase_subject('00000000-0000-0000-0000-000000000006', 'Art. 17 request') - 'erased_at');
select pg_temp.try($$select warden.erase_subject('00000000-0000-0000-0000-000000000006', '')$$);
reset role;
select pg_temp.ctx('a', '1', 'write');
set local role regress_app;
select pg_temp.try($$select warden.erase_subject('00000000-0000-0000-0000-000000000006', 'not admin')$$);
reset role;
select name, email = warden._pseudonym('tia@example.com') as email_is_pseudonym, phone, age from p_users order by name;
select distinct who as erasure_ran_triggers_as from p_who;
-- after the release, the subject is erased too
select id as hold from warden.holds where case_ref = 'REG-P' \gset
select pg_temp.ctx('a', '1', 'admin');
select warden.release_hold(:'hold', 'dispute settled');
set local role regress_app;
select warden.erase_subject('00000000-0000-0000-0000-000000000005', 'Art. 17 request') -> 'tables';
reset role;
select count(*) filter (where changes::text ~ '(sam|samuel|tia)@example|"Sam"|"Tia"|555-01') as events_with_a_value,
       count(*) filter (where changes::text like '%<erased>%') as erasure_events
  from pg_temp.ev();
select action, status, changes - 'reason' as changes from pg_temp.ev() where action = 'erase_subject' and status = 'success';
select count(*) as rows_with_a_value from p_users where email ~ '@' or name in ('Sam', 'Tia') or phone like '555%' or age is not null;

-- Export (Art. 15, 20): the subject themself or admin level, own tenant only
update p_users set email = 'new@example.com' where name = '[redacted]' and id = '00000000-0000-0000-0000-000000000006';
select pg_temp.ctx('a', '6', 'read');
set local role regress_app;
select warden.export_subject('00000000-0000-0000-0000-000000000006') -> 'tables';
select pg_temp.try($$select warden.export_subject('00000000-0000-0000-0000-000000000005')$$);
reset role;
select pg_temp.ctx('b', '1', 'admin');
set local role regress_app;
select warden.export_subject('00000000-0000-0000-0000-000000000006') -> 'tables';
reset role;

-- Consent (Art. 7, 21): append-only history, the latest record wins, usable in policies
insert into p_mail values ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000005', 'to Sam'),
                          ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000006', 'to Tia');
set local role regress_owner;
create policy only_with_consent on p_mail as restrictive for select using (warden.has_consent(subject, 'marketing'));
reset role;
select pg_temp.ctx('a', '5', 'read');
set local role regress_app;
select warden.record_consent('00000000-0000-0000-0000-000000000005', 'marketing', true, 'signup form') > 0 as recorded;
select pg_temp.try($$select warden.record_consent('00000000-0000-0000-0000-000000000006', 'marketing', true, 'forged')$$);
select body from p_mail order by body;
select warden.record_consent('00000000-0000-0000-0000-000000000005', 'marketing', false, 'unsubscribe link') > 0 as objection;
select body from p_mail order by body;
select warden.has_consent('00000000-0000-0000-0000-000000000005', 'marketing') as marketing,
       warden.has_consent('00000000-0000-0000-0000-000000000005', 'analytics') as never_asked;
select purpose, granted, source, recorded_by from warden.consent_history('00000000-0000-0000-0000-000000000005');
select pg_temp.try($$select * from warden.consents$$);
reset role;
select pg_temp.try($$update warden.consents set granted = true$$);
select pg_temp.ctx('b', '5', 'read');
select count(*) as other_tenant_history from warden.consent_history('00000000-0000-0000-0000-000000000005');
select warden.clear_context();
select warden.has_consent('00000000-0000-0000-0000-000000000005', 'marketing') as without_context;

-- Account deletion: who may ask, and the prerequisites, all listed
insert into p_members values ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000005', 'admin'),
                             ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000006', 'write'),
                             ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000006', 'admin');
select pg_temp.ctx('a', '5', 'admin');
set local role regress_app;
select pg_temp.try($$select warden.delete_account('00000000-0000-0000-0000-000000000005', 'leaving')$$);
reset role;
set local role regress_owner;
select warden.register_memberships('p_members', 'actor_id', 'role');
select pg_temp.try($$select warden.register_memberships('p_plain', 'id', 'email')$$);
reset role;
select warden.place_hold('REG-Q', 'audit', '00000000-0000-0000-0000-00000000000a', subject => '00000000-0000-0000-0000-000000000005') is not null as placed;
select pg_temp.ctx('a', '5', 'admin');
set local role regress_app;
select pg_temp.try($$select warden.delete_account('00000000-0000-0000-0000-000000000005', 'leaving')$$);
reset role;
select pg_temp.ctx('b', '1', 'admin');
set local role regress_app;
select pg_temp.try($$select warden.delete_account('00000000-0000-0000-0000-000000000005', 'not my member')$$);
reset role;
select id as hold from warden.holds where case_ref = 'REG-Q' \gset
select warden.release_hold(:'hold', 'closed');
update p_members set role = 'admin' where actor_id = '00000000-0000-0000-0000-000000000006' and tenant_id = '00000000-0000-0000-0000-00000000000a';
-- the actor made two API keys, one already revoked; deletion revokes the other
select pg_temp.ctx('a', '5', 'admin');
set local role regress_app;
select warden.create_api_key('actor 5 cli', 'read', '{*:*:read}') as key5 \gset
select warden.revoke_api_key(id, 'old') from warden.api_keys where name = 'actor 5 cli';
select warden.create_api_key('actor 5 ci', 'read', '{*:*:read}') as key5b \gset
reset role;
-- an admin of the actor's tenant deletes it
select pg_temp.ctx('a', '6', 'admin');
set local role regress_app;
select report - 'deleted_at' from warden.delete_account('00000000-0000-0000-0000-000000000005', 'closed by an admin') report;
select pg_temp.try($$select warden.delete_account('00000000-0000-0000-0000-000000000005', 'twice')$$);
reset role;
select actor, deleted_by, reason from warden.deleted_accounts;
select name, revoke_reason from warden.api_key_records where created_by = '00000000-0000-0000-0000-000000000005' order by name;
select regexp_replace(pg_temp.try(format('select warden.authenticate_key(%L)', :'key5b')), 'wdn_[0-9a-f]{12}', 'wdn_<id>') as refused;
select pg_temp.try($$delete from warden.deleted_accounts$$);
-- a context minted for the deleted actor before the deletion's second is refused
select pg_temp.try($$select pg_temp.ctx('a', '5', 'read')$$);
select action, status, resource_type,
       regexp_replace(changes->>'failures', '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g') as failures
  from pg_temp.ev() where action = 'delete_account' order by 2, 4;
rollback;
