-- Errors are part of the API: SQLSTATE, a message naming the object, a hint.
begin;
set local role regress_owner;
create table plain (id int, tenant_id uuid);
create table texty (id int, tenant_id numeric);
create view plain_v as select * from plain;
create sequence seq;
create materialized view mv as select 1 as x;

select regress_try($$select warden.protect_table('plain_v')$$);
select regress_try($$select warden.protect_table('seq')$$);
select regress_try($$select warden.protect_table('mv')$$);
select regress_try($$select warden.protect_table('plain', 'org_id')$$);
select regress_try($$select warden.protect_table('texty')$$);
select regress_try($$select warden.protect_table('no_such_table')$$);
select regress_try($$select warden.guard_schema('no_such_schema')$$);
reset role;

-- only the owner may protect or unprotect
set local role regress_app;
select regress_try($$select warden.protect_table('plain')$$);
select regress_try($$select warden.unprotect_table('plain')$$);
select regress_try($$select warden.guard_schema('public')$$);

-- only trusted middleware may set a context
select regress_try($$select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'admin')$$);
reset role;
set local role regress_middleware;
select regress_try($$select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'owner')$$);
select regress_try($$select warden.set_context(null, '00000000-0000-0000-0000-000000000001', 'read')$$);
select regress_try($$select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'read')$$);
reset role;

-- bad credentials are 28000
set local role regress_app;
select regress_try($$select warden.authenticate('not-a-token')$$);
select regress_try($$select warden.authenticate('')$$);
select regress_try($$select warden.authenticate(null)$$);
select regress_try($$select warden.authenticate('eyJhbGciOiJub25lIn0.eyJleHAiOjF9.')$$);
select regress_try($$select warden.has_level('superuser')$$);

-- forging: the carrier cannot be set, other warden.* names do not exist
select regress_try($$set warden.context_token = 'x'$$);
select regress_try($$select set_config('warden.context_token', 'x', true)$$);
select regress_try($$set warden.tenant_id = '00000000-0000-0000-0000-00000000000b'$$);
select regress_try($$select current_setting('warden.context_token')$$);
select regress_try($$set warden.jwt_secret = 'attacker-chosen-secret-0123456789abcdef'$$);
reset role;

-- no usable secret is the server's fault: 55000
set local warden.jwt_secret = '';
select regress_try($$select warden.authenticate('a.b.c')$$);
select regress_try($$select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'read')$$);
set local warden.jwt_secret = 'too-short';
select regress_try($$select warden.authenticate('a.b.c')$$);
rollback;
