-- PostgreSQL's own errors pass through warden's hooks (utility, executor) unchanged: SQLSTATE
-- (custom ones too), message, detail, hint, CONTEXT, QUERY and the cursor position, and
-- PL/pgSQL catches its own codes. Nothing here names warden: this file's expected output was made
-- on a cluster without warden (tests/ops/pg_regress_suite.sh runs PostgreSQL's whole suite the
-- same way).
begin;
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT always
create function regress_diag(sql text) returns void language plpgsql as $$
declare st text; msg text; det text; hnt text; ctx text;
begin
    execute sql;
    raise notice 'no error';
exception when others then
    get stacked diagnostics st = returned_sqlstate, msg = message_text, det = pg_exception_detail,
                            hnt = pg_exception_hint, ctx = pg_exception_context;
    raise notice E'sqlstate %\nmessage %\ndetail %\nhint %\ncontext %', st, msg, det, hnt, ctx;
end $$;

-- a function raising a custom SQLSTATE, caught by it
create function regress_raise_u() returns int language plpgsql as $$
begin
    raise exception sqlstate 'U9999' using message = 'business rule broken', detail = 'order 7 is closed',
                                           hint = 'reopen it first';
end $$;
do $$ begin begin perform regress_raise_u(); exception when sqlstate 'U9999' then raise notice 'caught % from a function', sqlstate; end; end $$;
select regress_raise_u();
select regress_diag('select regress_raise_u()');

-- a trigger
create table regress_orders (id int, qty int);
create function regress_check_qty() returns trigger language plpgsql as $$
begin
    if new.qty < 0 then
        raise exception sqlstate 'U0001' using message = format('quantity %s is negative', new.qty);
    end if;
    return new;
end $$;
create trigger regress_check_qty before insert or update on regress_orders for each row execute function regress_check_qty();
do $$ begin begin insert into regress_orders values (1, -1); exception when sqlstate 'U0001' then raise notice 'caught % from a trigger', sqlstate; end; end $$;
insert into regress_orders values (1, -1);
select regress_diag('insert into regress_orders values (1, -2)');

-- a DO block, and a DO block run by EXECUTE inside another (utility statements)
do $$ begin raise exception sqlstate 'U0002' using message = 'from a DO block'; end $$;
do $$ begin begin execute 'do $x$ begin raise exception sqlstate ''U0002''; end $x$'; exception when sqlstate 'U0002' then raise notice 'caught % from a nested DO block', sqlstate; end; end $$;

-- a procedure (CALL is a utility statement)
create procedure regress_proc() language plpgsql as $$ begin raise exception sqlstate 'U0004' using message = 'from a procedure'; end $$;
call regress_proc();
do $$ begin begin call regress_proc(); exception when sqlstate 'U0004' then raise notice 'caught % from CALL', sqlstate; end; end $$;

-- COPY: the line and column in CONTEXT
copy regress_orders from stdin;
1	5
2	-3
\.
copy regress_orders from stdin;
1	abc
\.
do $$ begin begin copy regress_orders from program 'printf "1\t-9\n"'; exception when sqlstate 'U0001' then raise notice 'caught % from COPY', sqlstate; end; end $$;

-- QUERY and the cursor position of a statement inside PL/pgSQL
do $$ begin execute 'select no_such_column from regress_orders'; end $$;
do $$ begin perform 1 / (select count(*) - count(*) from regress_orders); end $$;

-- the cursor position of utility statements
create view regress_v as select no_such_column from regress_orders;
alter table regress_orders add column price int default 'abc';
create table regress_t2 (a int check (a > 'x'));

-- a parallel worker
create table regress_big as select g as x from generate_series(1, 20000) g;
analyze regress_big;
create function regress_parallel_check(x int) returns boolean language plpgsql parallel safe as $$
begin
    if x = 12345 then
        raise exception sqlstate 'U0003' using message = 'bad row in a parallel worker';
    end if;
    return true;
end $$;
set local max_parallel_workers_per_gather = 2;
set local parallel_setup_cost = 0;
set local parallel_tuple_cost = 0;
set local min_parallel_table_scan_size = 0;
set local parallel_leader_participation = off;
explain (costs off) select count(*) from regress_big where regress_parallel_check(x);
do $$ begin begin perform count(*) from regress_big where regress_parallel_check(x); exception when sqlstate 'U0003' then raise notice 'caught % from a parallel worker', sqlstate; end; end $$;
select regress_diag('select count(*) from regress_big where regress_parallel_check(x)');

-- built-in SQLSTATEs keep theirs too
do $$ begin begin perform 1 / 0; exception when division_by_zero then raise notice 'caught % (division_by_zero)', sqlstate; end; end $$;
do $$ begin begin insert into regress_orders values (null, 1); alter table regress_orders alter column id set not null; exception when not_null_violation then raise notice 'caught % (not_null_violation) from ALTER TABLE', sqlstate; end; end $$;
rollback;
