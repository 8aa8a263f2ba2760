\set k random(0, 999)
\set id 1 + :k + 1000 * random(0, 999)
BEGIN;
@CONTEXT@
SELECT amount FROM @TABLE@ WHERE id = :id;
END;
