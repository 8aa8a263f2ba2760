\set k random(0, 999)
BEGIN;
SET LOCAL enable_indexscan = off;
SET LOCAL enable_bitmapscan = off;
@CONTEXT@
SELECT count(*), sum(amount) FROM @TABLE@ WHERE note LIKE '%ab%';
END;
