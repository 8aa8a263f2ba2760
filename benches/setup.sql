-- Benchmark data: four copies of one 1,000,000-row table, 1,000 tenants with 1,000 rows each,
-- scattered (row i belongs to tenant i % 1000, so every tenant has a row on almost every page).
--   t_a       no row level security
--   t_b       hand-written policy: tenant_id = current_setting('app.tenant')::uuid
--   t_bp      the same, wrapped:   tenant_id = (SELECT current_setting('app.tenant')::uuid)
--   t_c       warden.protect_table()
--   t_c2      warden.protect_table(..., distributed => true): the form Citus accepts, a direct call
--             that warden's planner support turns into a once-per-statement InitPlan
--   t_c3      the same direct call through an alias of warden's C function without the planner
--             support: one call per row, answered by the per-transaction cache (the cost of the
--             cache itself; not something warden creates)
--   t_a8/t_c8 the same data with a bigint tenant (tenant i % 1000 is the number i % 1000): no RLS
--             and warden.protect_table()
--   t_at/t_ct the same with a text tenant ('org_' || i % 1000)
-- Every table has the same primary key and tenant index; bench_app is an ordinary role.
CREATE EXTENSION IF NOT EXISTS warden;
CREATE ROLE bench_app LOGIN IN ROLE warden_context_setter;

CREATE TABLE t_a (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount int NOT NULL, flag int NOT NULL, note text NOT NULL);
INSERT INTO t_a
SELECT i, ('00000000-0000-0000-0000-' || lpad((i % 1000)::text, 12, '0'))::uuid,
       (i * 7919) % 10007, (i * 31) % 97, md5(i::text)
  FROM generate_series(1::bigint, 1000000) i;
CREATE INDEX ON t_a (tenant_id);

CREATE TABLE t_b (LIKE t_a INCLUDING ALL);
INSERT INTO t_b SELECT * FROM t_a;
ALTER TABLE t_b ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON t_b USING (tenant_id = current_setting('app.tenant')::uuid);

CREATE TABLE t_bp (LIKE t_a INCLUDING ALL);
INSERT INTO t_bp SELECT * FROM t_a;
ALTER TABLE t_bp ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON t_bp USING (tenant_id = (SELECT current_setting('app.tenant')::uuid));

CREATE TABLE t_c (LIKE t_a INCLUDING ALL);
INSERT INTO t_c SELECT * FROM t_a;
SELECT warden.protect_table('t_c');

CREATE TABLE t_c2 (LIKE t_a INCLUDING ALL);
INSERT INTO t_c2 SELECT * FROM t_a;
SELECT warden.protect_table('t_c2', distributed => true);

CREATE FUNCTION public.tenant_with_level_per_row(text) RETURNS uuid
    STABLE STRICT PARALLEL RESTRICTED LANGUAGE c AS '$libdir/warden', 'tenant_with_level_wrapper';
CREATE TABLE t_c3 (LIKE t_a INCLUDING ALL);
INSERT INTO t_c3 SELECT * FROM t_a;
ALTER TABLE t_c3 ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON t_c3 USING (tenant_id = public.tenant_with_level_per_row('read'));

CREATE TABLE t_a8 (id bigint PRIMARY KEY, tenant_id bigint NOT NULL, amount int NOT NULL, flag int NOT NULL, note text NOT NULL);
INSERT INTO t_a8 SELECT id, id % 1000, amount, flag, note FROM t_a;
CREATE INDEX ON t_a8 (tenant_id);
CREATE TABLE t_c8 (LIKE t_a8 INCLUDING ALL);
INSERT INTO t_c8 SELECT * FROM t_a8;
SELECT warden.protect_table('t_c8');

CREATE TABLE t_at (id bigint PRIMARY KEY, tenant_id text NOT NULL, amount int NOT NULL, flag int NOT NULL, note text NOT NULL);
INSERT INTO t_at SELECT id, 'org_' || (id % 1000), amount, flag, note FROM t_a;
CREATE INDEX ON t_at (tenant_id);
CREATE TABLE t_ct (LIKE t_at INCLUDING ALL);
INSERT INTO t_ct SELECT * FROM t_at;
SELECT warden.protect_table('t_ct');

GRANT SELECT ON t_a, t_b, t_bp, t_c, t_c2, t_c3, t_a8, t_c8, t_at, t_ct TO bench_app;
VACUUM ANALYZE t_a, t_b, t_bp, t_c, t_c2, t_c3, t_a8, t_c8, t_at, t_ct;
