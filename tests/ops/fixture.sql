-- Fixture for the operations tests (tests/ops/): what a database using warden typically holds.
-- Acme (aaaa...) has 3 docs and 4 events, Globex (bbbb...) 2 docs and 2 events.
SET client_min_messages = warning;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ops_owner') THEN CREATE ROLE ops_owner NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ops_app') THEN CREATE ROLE ops_app LOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ops_middleware') THEN CREATE ROLE ops_middleware LOGIN; END IF;
END $$;
GRANT warden_context_setter TO ops_middleware;
GRANT CREATE ON SCHEMA public TO ops_owner;
CREATE SCHEMA vault AUTHORIZATION ops_owner;
GRANT USAGE ON SCHEMA vault TO ops_app;

SET ROLE ops_owner;
CREATE TABLE docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, title text NOT NULL);
INSERT INTO docs (tenant_id, title) VALUES
    ('aaaaaaaa-0000-0000-0000-00000000000a', 'acme 1'), ('aaaaaaaa-0000-0000-0000-00000000000a', 'acme 2'),
    ('aaaaaaaa-0000-0000-0000-00000000000a', 'acme 3'),
    ('bbbbbbbb-0000-0000-0000-00000000000b', 'globex 1'), ('bbbbbbbb-0000-0000-0000-00000000000b', 'globex 2');
SELECT warden.protect_table('docs');

CREATE TABLE events (tenant_id uuid NOT NULL, at timestamptz NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events VALUES
    ('aaaaaaaa-0000-0000-0000-00000000000a', '2025-03-01', 'a'), ('aaaaaaaa-0000-0000-0000-00000000000a', '2025-04-01', 'b'),
    ('aaaaaaaa-0000-0000-0000-00000000000a', '2026-03-01', 'c'), ('aaaaaaaa-0000-0000-0000-00000000000a', '2026-04-01', 'd'),
    ('bbbbbbbb-0000-0000-0000-00000000000b', '2025-05-01', 'e'), ('bbbbbbbb-0000-0000-0000-00000000000b', '2026-05-01', 'f');
SELECT warden.protect_table('events');

SELECT warden.guard_schema('vault');
CREATE TABLE vault.secrets (tenant_id uuid NOT NULL, value text);
RESET ROLE;
INSERT INTO vault.secrets VALUES ('aaaaaaaa-0000-0000-0000-00000000000a', 'deny by default');  -- as the superuser
GRANT SELECT, INSERT, UPDATE, DELETE ON docs, events, vault.secrets TO ops_app, ops_middleware;
