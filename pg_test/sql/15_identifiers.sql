-- Tenants and actors as real schemas and identity providers name them: bigint, integer, text and
-- varchar tenant columns beside uuid; identifiers compared exactly; every capability takes them.
begin;
set local role regress_owner;
create table acct_b (id bigint primary key, account_id bigint not null, body text);
create table acct_i (id int primary key, account_id integer not null, body text);
create table org_t (id int primary key, org_id text not null, body text);
create table org_v (id int primary key, org_id varchar(64) not null, body text);
create table bad_n (id int, tenant_id numeric);
create table bad_j (id int, tenant_id jsonb);
insert into acct_b values (1, 42, 'b42'), (2, 420, 'b420'), (3, 4, 'b4'), (4, 9000000000, 'b9e9');
insert into acct_i values (1, 42, 'i42'), (2, 420, 'i420'), (3, 4, 'i4');
insert into org_t values (1, 'org_2abcXYZ9kQ', 't-org'), (2, 'ORG_2ABCXYZ9KQ', 't-upper'), (3, ' org_2abcXYZ9kQ', 't-space'),
                         (4, '42', 't42'), (5, '042', 't042'), (6, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 't-uuid');
insert into org_v select * from org_t;
grant select, insert, update, delete on acct_b, acct_i, org_t, org_v to regress_app;
select warden.protect_table('acct_b', 'account_id'), warden.protect_table('acct_i', 'account_id'),
       warden.protect_table('org_t', 'org_id'), warden.protect_table('org_v', 'org_id');
-- unsupported types: 42804, with a hint that works
select regress_try($$select warden.protect_table('bad_n')$$);
select regress_try($$select warden.protect_table('bad_j')$$);
alter table bad_n alter column tenant_id type text using tenant_id::text;
select regress_try($$select warden.protect_table('bad_n')$$);
select table_name, tenant_column, tenant_type, policy_form from warden.protected_tables
 where table_name in ('acct_b', 'acct_i', 'org_t', 'org_v', 'bad_n') order by 1;
select table_name, protected, problem from warden.rls_coverage where table_name in ('acct_b', 'acct_i', 'org_t', 'org_v') order by 1;
select * from regress_policies('acct_b');
select * from regress_policies('org_v');
reset role;

create function pg_temp.as_tenant(tenant text, level text default 'read') returns void language sql as $$
    select warden.set_context(tenant, 'user_2NQ8xk1Lr3', level)
$$;
create function pg_temp.seen(tenant text) returns table (tbl text, bodies text) language plpgsql as $$
begin
    perform pg_temp.as_tenant(tenant);
    execute 'set local role regress_app';
    return query
        select 'acct_b', string_agg(body, ',' order by body) from acct_b
        union all select 'acct_i', string_agg(body, ',' order by body) from acct_i
        union all select 'org_t', string_agg(body, ',' order by body) from org_t
        union all select 'org_v', string_agg(body, ',' order by body) from org_v;
    execute 'reset role';
end $$;

-- each context sees exactly its rows, on every type: 42 is never 420, 4, 042 or ' 42'
select * from pg_temp.seen('42');
select * from pg_temp.seen('4');
select * from pg_temp.seen('042');
select * from pg_temp.seen(' 42');
-- a bigint beyond int4: the bigint table's row, no error on the integer table
select * from pg_temp.seen('9000000000');
-- a provider's text id: exact (no case folding, no trimming), and no error on numeric tables
select * from pg_temp.seen('org_2abcXYZ9kQ');
select * from pg_temp.seen('ORG_2ABCXYZ9KQ');
-- a uuid context on a bigint table matches nothing; on a text table, its canonical form
select * from pg_temp.seen('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11');

-- writes: the WITH CHECK of every type
select pg_temp.as_tenant('42', 'write');
set local role regress_app;
insert into acct_b values (10, 42, 'new42');
insert into org_t values (10, '42', 'new42');
select regress_try($$insert into acct_b values (11, 420, 'theirs')$$);
select regress_try($$insert into acct_i values (11, 4, 'theirs')$$);
select regress_try($$insert into org_t values (11, '042', 'theirs')$$);
select regress_try($$update acct_b set account_id = 420 where id = 10$$);
select count(*) as updated_elsewhere from (select 1 from acct_b where account_id = 420) x;
reset role;

-- the accessors: uuid-typed ones stay uuid (NULL for another kind of identifier), *_id ones text
select pg_temp.as_tenant('42', 'admin');
select warden.current_tenant() as tenant_uuid, warden.current_tenant_id() as tenant_id,
       warden.current_actor() as actor_uuid, warden.current_actor_id() as actor_id,
       warden.tenant_with_level('read') as uuid_form, warden.tenant_with_level_text('read') as text_form,
       warden.tenant_with_level_bigint('read') as bigint_form, warden.tenant_with_level_int('read') as int_form;
select pg_temp.as_tenant('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11');
select warden.current_tenant(), warden.current_tenant_id(), warden.tenant_with_level_bigint('read');
select pg_temp.as_tenant('9000000000');
select warden.tenant_with_level_bigint('read'), warden.tenant_with_level_int('read');

-- bad identifiers: 22023 from set_context, nothing installed
select regress_try($$select warden.set_context('', 'u', 'read')$$);
select regress_try($$select warden.set_context('t', '', 'read')$$);
select regress_try($$select warden.set_context(repeat('x', 10240), 'u', 'read')$$);
select regress_try($$select warden.set_context(repeat('é', 128), 'u', 'read')$$);
select regress_try($$select warden.set_context(E'a\nb', 'u', 'read')$$);
select regress_try($$select warden.set_context(E'tab\t', 'u', 'read')$$);
select regress_try($$select warden.set_context(null::text, 'u', 'read')$$);
select warden.current_tenant_id() as still_the_last_good_context;

-- the policies' tenant is computed once per statement (an InitPlan) and the tenant index is used
select pg_temp.as_tenant('42');
set local role regress_app;
set local enable_seqscan = off;
explain (costs off) select body from acct_b;
explain (costs off) select body from org_v;
reset enable_seqscan;
reset role;

-- the direct (Citus) form on a bigint column
set local role regress_owner;
create table acct_d (id bigint primary key, company_id bigint not null, body text);
insert into acct_d values (1, 42, 'd42'), (2, 420, 'd420');
grant select on acct_d to regress_app;
select warden.protect_table('acct_d', 'company_id', distributed => true);
select pg_get_expr(polqual, polrelid) from pg_policy where polrelid = 'acct_d'::regclass and polname = 'warden_select';
reset role;
select pg_temp.as_tenant('42');
set local role regress_app;
select body from acct_d;
reset role;

-- the audit trail records identifiers as they are (serialization 2) and verifies
set local role regress_owner;
select warden.enable_audit('org_t');
reset role;
select pg_temp.as_tenant('org_2abcXYZ9kQ', 'write');
set local role regress_app;
update org_t set body = 'audited' where id = 1;
reset role;
select warden.seal_audit() > 0 as sealed;
select tenant, actor, action, resource_type, serialization from warden.audit_trail
 where resource_type = 'public.org_t' order by id desc limit 1;
select intact, first_bad_id from warden.verify_audit();
select tenant, action, status, events from warden.audit_summary(now() - interval '1 day', now() + interval '1 day')
 where tenant = 'org_2abcXYZ9kQ';
rollback;

-- legal holds of bigint and text tenants, and of a text subject
begin;
set local role regress_owner;
create table h_b (id bigint primary key, account_id bigint not null, body text);
create table h_t (id int primary key, org_id text not null, person text, body text);
insert into h_b values (1, 42, 'held'), (2, 420, 'free');
insert into h_t values (1, 'org_A', 'user_1', 'held'), (2, 'org_B', 'user_1', 'free'), (3, 'org_A', 'user_2', 'free too');
select warden.protect_table('h_b', 'account_id'), warden.protect_table('h_t', 'org_id');
select warden.register_personal_data('h_t', 'person', '{body}');
grant select, delete, update on h_b, h_t to regress_app;
reset role;
select warden.place_hold('IDS-1', 'litigation', '42') is not null as placed_bigint;
select warden.place_hold('IDS-2', 'litigation', 'org_A', subject => 'user_1') is not null as placed_subject;
select regress_try($$select warden.place_hold('IDS-3', 'litigation', '')$$);
select case_ref, tenant, subject, scope, active from warden.legal_holds order by case_ref;
select warden.set_context('42', 'admin_1', 'delete');
set local role regress_app;
select regexp_replace(regress_try($$delete from h_b where id = 1$$), '[0-9a-f-]{36}', '<hold id>');
reset role;
select warden.set_context('420', 'admin_1', 'delete');
set local role regress_app;
delete from h_b where id = 2;
reset role;
select warden.set_context('org_A', 'admin_1', 'delete');
set local role regress_app;
select regexp_replace(regress_try($$delete from h_t where id = 1$$), '[0-9a-f-]{36}', '<hold id>');
delete from h_t where id = 3;
reset role;
select warden.set_context('org_B', 'admin_1', 'delete');
set local role regress_app;
delete from h_t where id = 2;
reset role;
select hold is not null as per_hold, check_name, ok from warden.verify_holds() where check_name = 'rows' order by 1, 2;
rollback;

-- GDPR subjects of bigint and text columns; consents of text subjects
begin;
set local role regress_owner;
create table s_b (account_id bigint not null, user_id bigint not null, email text);
create table s_t (org_id text not null, user_id text not null, email text);
insert into s_b values (42, 7, 'seven@example.com'), (42, 8, 'eight@example.com'), (420, 7, 'other@example.com');
insert into s_t values ('org_A', 'user_7', 'u7@example.com'), ('org_A', 'user_8', 'u8@example.com');
select warden.protect_table('s_b', 'account_id'), warden.protect_table('s_t', 'org_id');
select warden.register_personal_data('s_b', 'user_id', '{email}', 'redact');
select warden.register_personal_data('s_t', 'user_id', '{email}', 'redact');
reset role;
select warden.set_context('42', 'admin_1', 'admin');
select warden.erase_subject('7', 'request 1') -> 'tables' as erased;
select warden.erase_subject('org_7', 'not a number: no row of a bigint table') -> 'tables' as erased;
select warden.set_context('42', '7', 'read');
select warden.export_subject('7') -> 'tables' as exported;
select warden.set_context('org_A', 'user_8', 'read');
select warden.export_subject('user_8') -> 'tables' as exported;
select regress_try($$select warden.export_subject('user_7')$$);
select warden.record_consent('user_8', 'marketing', true, 'web form') > 0 as recorded;
select warden.has_consent('user_8', 'marketing') as own, warden.has_consent('user_7', 'marketing') as other;
select purpose, granted, recorded_by from warden.consent_history('user_8');
-- what erasure left (as the superuser, who bypasses row level security)
select * from s_b order by account_id, user_id;
rollback;

-- API keys and encryption in text and bigint tenants
begin;
select warden.set_context('org_2abc', 'user_admin', 'admin');
select warden.create_api_key('ci', 'read', '{docs:*:read}') as key \gset
select tenant, name, level, created_by from warden.api_keys;
select warden.authenticate_key(:'key');
select warden.current_tenant_id(), warden.current_level(), warden.current_tenant() is null as no_uuid;
select warden.set_context('org_2abc', 'user_admin', 'admin');
select warden.create_key('cards') is not null as created;
select warden.encrypt('4111 1111'::text, 'cards', 'row 1') as ct \gset
select warden.decrypt_text(:'ct', 'row 1') as plain;
select tenant, name, version from warden.keys;
select warden.put_secret('db', 's3cret');
select warden.get_secret('db');
select warden.set_context('org_2ABC', 'user_admin', 'admin');
select regress_try(format('select warden.decrypt_text(%L, %L)', :'ct', 'row 1'));
select warden.set_context('42', 'user_admin', 'admin');
select regress_try(format('select warden.decrypt_text(%L, %L)', :'ct', 'row 1'));
select count(*) as secrets_of_42 from warden.secret_names;
-- the same in a bigint tenant
select warden.create_api_key('ci', 'write', '{docs:*:write}') as key42 \gset
select warden.authenticate_key(:'key42');
select warden.current_tenant_id(), warden.current_level(), warden.tenant_with_level_bigint('read') as as_bigint;
select warden.set_context('42', 'user_admin', 'admin');
select warden.create_key('cards') is not null as created;
select warden.encrypt('42''s card'::text, 'cards', 'row 1') as ct42 \gset
select warden.decrypt_text(:'ct42', 'row 1') as plain;
select tenant, name from warden.keys order by tenant;
select tenant, name, level from warden.api_keys order by tenant;
select warden.set_context('042', 'user_admin', 'admin');
select regress_try(format('select warden.decrypt_text(%L, %L)', :'ct42', 'row 1'));
rollback;

-- classification and the PHI read log of a text tenant; an account deletion of a text actor
begin;
set local role regress_owner;
create schema id_clinic;
create table id_clinic.patients (id int primary key, org_id text not null, name text);
insert into id_clinic.patients values (1, 'org_clinic', 'p1'), (2, 'org_clinic', 'p2'), (3, 'org_other', 'p3');
select warden.protect_table('id_clinic.patients', 'org_id');
select warden.enable_audit('id_clinic.patients');
select warden.classify('id_clinic.patients', 'PHI');
grant usage on schema id_clinic to regress_app;
grant select on id_clinic.patients to regress_app;
create table members_t (org_id text not null, actor_id text not null, role text not null);
insert into members_t values ('org_clinic', 'user_gone', 'write'), ('org_clinic', 'user_boss', 'admin');
select warden.protect_table('members_t', 'org_id');
select warden.register_memberships('members_t', 'actor_id', 'role');
reset role;
select coalesce(max(id), 0) as base from warden.audit_events \gset
create temp table id_phi_base as select :base::bigint as b;
select warden.set_context('org_clinic', 'user_nurse', 'read');
set local role regress_app;
select count(*) from id_clinic.patients;
reset role;
do $$
begin
    for i in 1..200 loop
        exit when (select count(*) from (select action from warden.audit_pending
                                         union all select action from warden.audit_events
                                          where id > (select b from id_phi_base)) e
                    where e.action = 'phi_read') >= 1;
        perform pg_sleep(0.1);
    end loop;
end
$$;
select e.action, e.resource_id, e.changes ->> 'rows' as rows, e.tenant, e.actor
  from (select action, resource_id, changes::jsonb as changes, tenant, actor from warden.audit_pending
        union all
        select action, resource_id, changes, tenant, actor from warden.audit_events where id > :base) e
 where e.action = 'phi_read';
select warden.set_context('org_clinic', 'user_boss', 'admin');
select report - 'deleted_at' from warden.delete_account('user_gone', 'left the clinic') report;
select actor, reason from warden.deleted_accounts where actor = 'user_gone';
rollback;

-- partitions and scoped policies of bigint and text tenant columns
begin;
set local role regress_owner;
create table acct_p (id bigint not null, account_id bigint not null, body text) partition by list (account_id);
create table acct_p42 partition of acct_p for values in (42);
create table acct_p420 partition of acct_p for values in (420);
insert into acct_p values (1, 42, 'p42'), (2, 420, 'p420');
select warden.protect_table('acct_p', 'account_id');
create table acct_p4 partition of acct_p for values in (4);
select table_name, tenant_type, partition_of from warden.protected_tables where table_name like 'acct_p%' order by 1;
create table docs_t (id int primary key, org_id text not null, body text);
insert into docs_t values (1, 'org_A', 'a'), (2, 'org_B', 'b');
select warden.protect_table('docs_t', 'org_id', namespace => 'docs', resource_type => 'document');
select namespace, resource_type, tenant_type from warden.protected_tables where table_name = 'docs_t';
select pg_get_expr(polqual, polrelid) from pg_policy where polrelid = 'docs_t'::regclass and polname = 'warden_select';
grant select on acct_p, docs_t to regress_app;
reset role;
select warden.set_context('42', 'u1', 'read');
set local role regress_app;
select body from acct_p order by 1;
reset role;
select warden.set_context('org_A', 'u1', 'admin');
select warden.create_api_key('docs reader', 'read', '{docs:document:read}') as dkey \gset
select warden.create_api_key('other reader', 'read', '{billing:*:read}') as okey \gset
select warden.authenticate_key(:'dkey');
set local role regress_app;
select body from docs_t;
reset role;
select warden.authenticate_key(:'okey');
set local role regress_app;
select count(*) as with_another_scope from docs_t;
reset role;
rollback;
