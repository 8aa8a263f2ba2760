-- Parallel query: the functions that read the context are PARALLEL RESTRICTED, so the policies'
-- InitPlans run in the leader and the tenant reaches the workers as a parameter. Both policy forms
-- give the same, complete answer with a parallel plan.
begin;
set local role regress_owner;
create table big (id int, tenant_id uuid not null, v int);
insert into big select g, case when g % 2 = 0 then '00000000-0000-0000-0000-00000000000a'::uuid
                                              else '00000000-0000-0000-0000-00000000000b'::uuid end, g
  from generate_series(1, 20000) g;
create table big_direct (like big);
insert into big_direct select * from big;
select warden.protect_table('big');
select warden.protect_table('big_direct', distributed => true);
grant select on big, big_direct to regress_app;
analyze big;
analyze big_direct;
reset role;
set local role regress_middleware;
select warden.set_context('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-000000000001', 'read');
set local role regress_app;
set local parallel_setup_cost = 0;
set local parallel_tuple_cost = 0;
set local min_parallel_table_scan_size = 0;
set local max_parallel_workers_per_gather = 2;
set local enable_indexscan = off;
set local enable_bitmapscan = off;
explain (costs off) select count(*), sum(v) from big;
select count(*), sum(v) from big;
explain (costs off) select count(*), sum(v) from big_direct;
select count(*), sum(v) from big_direct;
-- a hand-written filter on an accessor is rewritten the same way: one call, in the leader, and a
-- parallel plan
explain (costs off) select count(*) from big where tenant_id = warden.current_tenant();
select count(*) from big where tenant_id = warden.current_tenant();
rollback;
