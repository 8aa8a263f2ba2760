\set k random(0, 999)
BEGIN;
@CONTEXT@
SELECT count(*), sum(amount) FROM @TABLE@ @TENANT_WHERE@;
END;
