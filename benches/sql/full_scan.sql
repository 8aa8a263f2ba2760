\set k random(0, 999)
BEGIN;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
@CONTEXT@
SELECT count(*), sum(amount) FROM @TABLE@ WHERE tenant_id = ('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid AND flag = 7;
END;
