\set k @TENANT@
\set id :k + 8 * random(1, 19999)
BEGIN;
SELECT warden.set_context(('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000f1', 'write');
UPDATE @TABLE@ SET amount = amount + 1 WHERE id = :id;
END;
