-- API keys: creation within the creator's level and scopes, the plaintext once and only a hash
-- stored, authentication by key (context with scopes), scopes restricting scoped tables, every
-- malformed, unknown, expired or revoked key refused with 28000 and on record, revocation rules.
begin;
create function pg_temp.try(sql text) returns text language sql as $$
    select regexp_replace(regexp_replace(regress_try(sql),
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'g'), 'wdn_[0-9a-f]{12}', 'wdn_<id>', 'g')
$$;
create function pg_temp.ctx(t text, a text, lvl text) returns void language sql as $$
    select warden.set_context(('00000000-0000-0000-0000-00000000000' || t)::uuid,
                              ('00000000-0000-0000-0000-00000000000' || a)::uuid, lvl)
$$;
select coalesce(max(id), 0) as base from warden.audit_events \gset
create temp table base as select :base::bigint as b;
create function pg_temp.ev() returns table (action text, status text, resource_type text, changes jsonb)
language sql as $$
    select action, status, resource_type, changes::jsonb from warden.audit_pending
    union all select action, status, resource_type, changes from warden.audit_events, pg_temp.base where id > b
$$;

set local role regress_owner;
create table k_docs (id int primary key, tenant_id uuid not null, title text);
create table k_notes (id int primary key, tenant_id uuid not null, body text);
-- k_docs: API keys need a docs:document scope; k_notes: levels only
select warden.protect_table('k_docs', namespace => 'docs', resource_type => 'document');
select warden.protect_table('k_notes');
select pg_temp.try($$select warden.protect_table('k_notes', namespace => 'Docs')$$);
select pg_temp.try($$select warden.protect_table('k_notes', namespace => '*')$$);
select pg_temp.try($$select warden.protect_table('k_notes', resource_type => 'note')$$);
select relid, policy_form, namespace, resource_type from warden.protected_tables
 where relid in ('k_docs'::regclass, 'k_notes'::regclass) order by 1;
select policyname, qual from regress_policies('k_docs') where policyname = 'warden_select';
grant select, insert, update, delete on k_docs, k_notes to regress_app;
reset role;
insert into k_docs values (1, '00000000-0000-0000-0000-00000000000a', 'A doc'), (2, '00000000-0000-0000-0000-00000000000b', 'B doc');
insert into k_notes values (1, '00000000-0000-0000-0000-00000000000a', 'A note'), (2, '00000000-0000-0000-0000-00000000000b', 'B note');

-- Creation: for the current tenant, within the creator's level and scopes; the plaintext once
select pg_temp.ctx('a', '1', 'admin');
set local role regress_app;
select warden.create_api_key('reader', 'read', '{docs:*:read}') as reader \gset
select warden.create_api_key('writer', 'write', '{docs:document:write}') as writer \gset
select warden.create_api_key('ops', 'admin', '{*:*:*}') as admin_key \gset
select warden.create_api_key('soon', 'read', '{docs:*:read}', now() + interval '1 hour') as soon \gset
select :'reader' ~ '^wdn_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$' as recognizable, length(:'reader') as length;
select name, level, scopes, status, key_hash is not null as admin_sees_hash, last_used_at
  from warden.api_keys order by name;
select pg_temp.try($$select warden.create_api_key('x', 'read', '{}')$$);
select pg_temp.try($$select warden.create_api_key('x', 'read', '{docs:read}')$$);
select pg_temp.try($$select warden.create_api_key('x', 'read', '{docs:*:write}')$$);
select pg_temp.try($$select warden.create_api_key('x', 'owner', '{docs:*:read}')$$);
select pg_temp.try($$select warden.create_api_key('x', 'read', '{docs:*:read}', now() - interval '1 second')$$);
-- the table itself, and so every hash, is closed to the application
select pg_temp.try($$select key_hash from warden.api_key_records$$);
reset role;
select count(*) as stored, count(*) filter (where key_hash = sha256(convert_to(:'reader', 'UTF8'))) as reader_by_hash,
       count(*) filter (where position(convert_to(substr(:'reader', 18), 'UTF8') in key_hash) > 0
                         or name = :'reader' or :'reader' = any (scopes)) as plaintext_anywhere
  from warden.api_key_records;

-- A write context cannot mint an admin key; a key cannot widen its own scopes
select pg_temp.ctx('a', '2', 'write');
set local role regress_app;
select pg_temp.try($$select warden.create_api_key('escalate', 'admin', '{*:*:*}')$$);
select name, key_hash from warden.api_keys where name = 'reader';
reset role;
set local role regress_app;
select warden.authenticate_key(:'writer');
select pg_temp.try($$select warden.create_api_key('escalate', 'admin', '{*:*:*}')$$);
select pg_temp.try($$select warden.create_api_key('wider', 'write', '{docs:*:write}')$$);
select pg_temp.try($$select warden.create_api_key('narrower', 'read', '{docs:document:read}')$$);

-- The reader key: tenant a, the key as actor, read level, its scopes
select warden.authenticate_key(:'reader');
select warden.current_tenant(), warden.current_actor() = (select id from warden.api_keys where name = 'reader') as actor_is_key,
       warden.current_level();
select warden.key_allows('docs', 'document', 'read') as read_docs,
       warden.key_allows('docs', 'document', 'write') as write_docs,
       warden.key_allows('docs_admin', 'document', 'read') as read_docs_admin,
       warden.key_allows('billing', 'invoice', 'read') as read_billing;
select pg_temp.try($$select warden.key_allows('docs', 'document', 'READ')$$);
-- tenant a's rows only; b's rows are out of reach of a's key
select title from k_docs order by id;
select body from k_notes order by id;
with u as (update k_docs set title = 'x' where id = 2 returning 1) select count(*) as b_rows_updated from u;
select pg_temp.try($$insert into k_docs values (3, '00000000-0000-0000-0000-00000000000a', 'by reader')$$);
-- docs:*:read does not write, even where the level would
select warden.authenticate_key(:'writer');
insert into k_docs values (4, '00000000-0000-0000-0000-00000000000a', 'by writer');
select pg_temp.try($$insert into k_docs values (5, '00000000-0000-0000-0000-00000000000b', 'into b')$$);
update k_notes set body = 'edited by writer' where id = 1;
-- write does not imply delete: the row stays
with d as (delete from k_docs where id = 4 returning 1) select count(*) as deleted from d;

-- Malformed, case-changed, truncated, padded, unknown: 28000, and on record
select pg_temp.try(format('select warden.authenticate_key(%L)', upper(:'reader')));
select pg_temp.try(format('select warden.authenticate_key(%L)', left(:'reader', 17) || translate(substr(:'reader', 18, 42), 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') || right(:'reader', 1)));
select pg_temp.try(format('select warden.authenticate_key(%L)', left(:'reader', 59)));
select pg_temp.try(format('select warden.authenticate_key(%L)', :'reader' || ' '));
select pg_temp.try(format('select warden.authenticate_key(%L)', overlay(:'reader' placing (case when right(:'reader', 1) = 'A' then 'E' else 'A' end) from 60)));
select pg_temp.try($$select warden.authenticate_key('wdn_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')$$);
select pg_temp.try($$select warden.authenticate_key(null)$$);
select pg_temp.try($$select warden.authenticate_key('Bearer eyJhbGciOi')$$);

-- Revocation: admin keys only by admin level; others by admin or their creator; then 28000
reset role;
select pg_temp.ctx('a', '2', 'write');
set local role regress_app;
select pg_temp.try(format('select warden.revoke_api_key(%L)', (select id from warden.api_keys where name = 'ops')));
select pg_temp.try(format('select warden.revoke_api_key(%L)', (select id from warden.api_keys where name = 'reader')));
reset role;
select id as reader_id from warden.api_keys where name = 'reader' \gset
select pg_temp.ctx('b', '3', 'admin');
set local role regress_app;
select pg_temp.try(format('select warden.revoke_api_key(%L)', :'reader_id'));
reset role;
select pg_temp.ctx('a', '1', 'admin');
set local role regress_app;
select warden.revoke_api_key((select id from warden.api_keys where name = 'reader'), 'rotated');
select pg_temp.try(format('select warden.revoke_api_key(%L)', (select id from warden.api_keys where name = 'reader')));
select name, status, revoke_reason from warden.api_keys where name = 'reader';
reset role;
set local role regress_app;
select pg_temp.try(format('select warden.authenticate_key(%L)', :'reader'));
-- expiry (the clock moved on: its row says so)
reset role;
update warden.api_key_records set expires_at = now() - interval '1 second' where name = 'soon';
set local role regress_app;
select pg_temp.try(format('select warden.authenticate_key(%L)', :'soon'));
select pg_temp.try($$select warden.revoke_api_key('00000000-0000-0000-0000-000000000000')$$);
select pg_temp.try($$select warden.create_api_key('x', 'read', '{docs:*:read}')$$);

-- Stale keys: never used (or unused for warden.key_stale_after)
reset role;
select pg_temp.ctx('a', '1', 'admin');
select name, reason from warden.stale_api_keys order by name;

-- Every refusal is on record (committed apart from this transaction), never with a key
select pg_sleep(0.3);
select action, status, resource_type, regexp_replace(changes ->> 'reason', 'wdn_[0-9a-f]{12}', 'wdn_<id>') as reason,
       changes ->> 'key_matched' as key_matched
  from pg_temp.ev() where action = 'authenticate' order by reason;
select count(*) as events_with_a_key from pg_temp.ev()
 where changes::text ~ 'wdn_[0-9a-f]{12}_' ;
select action, changes - 'expires_at' - 'display_prefix' as changes from pg_temp.ev()
 where action in ('create_api_key', 'revoke_api_key') order by action, changes ->> 'name';
rollback;
