-- For benches/ab_libraries.sh with a 0.3.0 database: what 0.4.0's warden.authenticate() reads on
-- every verification, warden.deleted_accounts as 0.4.0 creates it, with 10,000 deleted accounts (none
-- of them the benchmark's actor, so every token is accepted after the lookup).
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_guard') THEN CREATE ROLE warden_guard NOLOGIN; END IF;
END $$;
CREATE TABLE warden.deleted_accounts (actor uuid PRIMARY KEY, deleted_at timestamptz NOT NULL, deleted_by uuid, reason text NOT NULL);
INSERT INTO warden.deleted_accounts SELECT gen_random_uuid(), now(), NULL, 'bench' FROM generate_series(1, 10000);
GRANT SELECT ON warden.deleted_accounts TO warden_guard;
