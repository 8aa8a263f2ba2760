\set k random(0, 999)
BEGIN;
@CONTEXT@
SELECT count(*), sum(amount) FROM @TABLE@ WHERE tenant_id = ('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid;
END;
