-- protect_table(..., distributed => true): the policy form Citus accepts on distributed tables (a
-- direct call, no subquery), which warden's planner support turns into the same once-per-statement
-- InitPlan as the single-node form.
begin;
set local role regress_owner;
create table ledger (id int primary key, tenant_id uuid not null, amount int);
insert into ledger values (1, '00000000-0000-0000-0000-00000000000a', 10),
                          (2, '00000000-0000-0000-0000-00000000000a', 20),
                          (3, '00000000-0000-0000-0000-00000000000b', 30);
grant select, insert, update, delete on ledger to regress_app;
select warden.protect_table('ledger', distributed => true);
select * from regress_policies('ledger');
select relid, tenant_column, policy_form from warden.protected_tables where relid = 'ledger'::regclass;
select protected, problem from warden.rls_coverage where relid = 'ledger'::regclass;

-- the context is read once per statement (an InitPlan), not once per row
set local role regress_app;
set local enable_indexscan = off;
set local enable_bitmapscan = off;
explain (costs off) select * from ledger where amount > 5;
explain (costs off) update ledger set amount = amount + 1 where amount > 5;

-- rows follow the context
select count(*) as without_context from ledger;
reset role;
set local role regress_middleware;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'write');
set local role regress_app;
select id, amount from ledger order by id;
select regress_try($$insert into ledger values (4, '00000000-0000-0000-0000-00000000000b', 1)$$);
update ledger set amount = amount + 1 returning id, amount;

-- a generic cached plan evaluates the InitPlan at each execution, under that execution's context
set local plan_cache_mode = force_generic_plan;
prepare ledger_count as select count(*) from ledger;
execute ledger_count;
reset role;
set local role regress_middleware;
select warden.set_context('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-000000000001', 'read');
set local role regress_app;
execute ledger_count;
deallocate ledger_count;
-- a level that is not a constant cannot be hoisted: the call runs per row, with the same answers
explain (costs off) select count(*) from ledger where tenant_id = warden.tenant_with_level(case when id > 0 then 'read' end);
select count(*) from ledger where tenant_id = warden.tenant_with_level(case when id > 0 then 'read' end);
-- without rows to iterate, the call is left alone
explain (costs off) select warden.tenant_with_level('read');

-- partitions created later keep the root's form
reset role;
set local role regress_owner;
create table ledger_parts (tenant_id uuid not null, at date not null) partition by range (at);
create table ledger_parts_2025 partition of ledger_parts for values from ('2025-01-01') to ('2026-01-01');
select warden.protect_table('ledger_parts', distributed => true);
create table ledger_parts_2026 partition of ledger_parts for values from ('2026-01-01') to ('2027-01-01');
select relid, policy_form from warden.protected_tables where relid::text like 'ledger_parts%' order by 1;

-- protecting again switches the form; both forms are protected for rls_coverage
select warden.protect_table('ledger', distributed => false);
select relid, policy_form from warden.protected_tables where relid = 'ledger'::regclass;
select protected from warden.rls_coverage where relid = 'ledger'::regclass;

-- without Citus, the default is the single-node form
create table plain (tenant_id uuid);
select warden.protect_table('plain');
select policy_form from warden.protected_tables where relid = 'plain'::regclass;

-- NULL arguments are refused (the function is not STRICT, distributed may be NULL)
select regress_try($$select warden.protect_table(null)$$);
select regress_try($$select warden.protect_table('plain', null)$$);
rollback;
