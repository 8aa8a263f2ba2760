-- Benchmark data: four copies of one 1,000,000-row table, 1,000 tenants with 1,000 rows each,
-- scattered (row i belongs to tenant i % 1000, so every tenant has a row on almost every page).
--   t_a       no row level security
--   t_b       hand-written policy: tenant_id = current_setting('app.tenant')::uuid
--   t_bp      the same, wrapped:   tenant_id = (SELECT current_setting('app.tenant')::uuid)
--   t_c       warden.protect_table()
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

GRANT SELECT ON t_a, t_b, t_bp, t_c TO bench_app;
VACUUM ANALYZE t_a, t_b, t_bp, t_c;
