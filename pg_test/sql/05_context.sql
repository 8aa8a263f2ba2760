-- The context: transaction-local, and savepoints behave like SET LOCAL.
begin;
set local role regress_middleware;
select warden.current_tenant(), warden.current_actor(), warden.current_level(), warden.has_level('read');
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'read');
select warden.current_tenant(), warden.current_actor(), warden.current_level();
select l, warden.has_level(l), warden.tenant_with_level(l) from unnest(array['read', 'write', 'delete', 'admin']) l;

-- ROLLBACK TO SAVEPOINT restores the context in force when the savepoint was taken
savepoint before_switch;
select warden.set_context('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000002', 'admin');
select warden.current_tenant(), warden.current_level();
rollback to savepoint before_switch;
select warden.current_tenant(), warden.current_level();

-- RELEASE keeps the inner context
savepoint s2;
select warden.set_context('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000002', 'delete');
release savepoint s2;
select warden.current_tenant(), warden.current_level();

-- a context set inside a function with its own SET clause (a SECURITY DEFINER login wrapper, say)
-- lasts for the rest of the transaction: SET LOCAL semantics, for a different setting
create function pg_temp.login() returns void language plpgsql set search_path = pg_catalog as $$
begin
    perform warden.set_context('00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-000000000003', 'write');
end $$;
select pg_temp.login();
select warden.current_tenant(), warden.current_level();

select warden.clear_context();
select warden.current_tenant(), warden.has_level('read');
rollback;

-- nothing is left after the transaction
select warden.current_tenant(), warden.current_level();

-- With Citus loaded, the context is installed by actual SET LOCAL statements (so that Citus forwards
-- them to the workers). Citus is not installed here; a placeholder for its setting takes the same
-- code path. Same semantics, and still no transaction id: authenticating is not a write.
begin;
set local citus.propagate_set_commands = 'none';
set local role regress_middleware;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'read');
select warden.current_tenant(), current_setting('citus.propagate_set_commands') as propagate;
savepoint s;
select warden.set_context('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000002', 'admin');
select warden.current_tenant(), warden.current_level();
rollback to savepoint s;
select warden.current_tenant(), warden.current_level();
select pg_current_xact_id_if_assigned() is null as no_transaction_id;
rollback;
select warden.current_tenant();

-- The carrier itself: any role may SET LOCAL it, but only to a token that verifies (the check hook
-- runs the same verification as authenticate), and only a transaction-local value is a context.
begin;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'read');
select current_setting('warden.context_token') as tok \gset
select warden.clear_context();
set local role regress_app;
set local warden.context_token = :'tok';
select warden.current_tenant(), warden.current_level();
savepoint s;
set local warden.context_token = 'forged.token.value';
rollback to savepoint s;
select warden.current_tenant() is not null as still_the_valid_one;
-- SET without LOCAL would outlive the transaction: refused (RESET and SET ... TO DEFAULT clear it)
select regress_try(format('set warden.context_token = %L', :'tok'));
select regress_try(format('set "Warden.Context_Token" = %L', :'tok'));
select warden.current_tenant() is not null as still_the_valid_one;
-- set_config() returns the value it set, and the carrier is superuser-only to read: refused
select regress_try(format('select set_config(%L, %L, true)', 'warden.context_token', :'tok'));
-- stored values are refused
select regress_try($$alter role regress_app set warden.context_token = 'x'$$);
rollback;

-- nor after COMMIT (the one transaction in this suite that commits; it creates nothing)
begin;
set local role regress_middleware;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'read');
select warden.current_tenant() is not null as inside;
commit;
select warden.current_tenant(), warden.current_level();
