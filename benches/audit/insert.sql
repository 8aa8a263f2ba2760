\set k @TENANT@
BEGIN;
SELECT warden.set_context(('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid, '00000000-0000-0000-0000-0000000000f1', 'write');
INSERT INTO @TABLE@ (tenant_id, amount, note) VALUES (('00000000-0000-0000-0000-' || lpad(:k::text, 12, '0'))::uuid, :k, 'a new row');
END;
