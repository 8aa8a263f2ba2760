-- Fixture for the integration tests in tests/, loaded by scripts/test.sh as the superuser into a
-- fresh database. Tenant A owns rows 1-10, tenant B rows 101-107.
CREATE EXTENSION warden;
CREATE ROLE it_owner NOLOGIN;
CREATE ROLE it_app LOGIN;                                       -- the application: no superuser, no BYPASSRLS
CREATE ROLE it_middleware LOGIN IN ROLE warden_context_setter;  -- trusted auth middleware
GRANT CREATE ON SCHEMA public TO it_owner;
CREATE SCHEMA app_scratch AUTHORIZATION it_app;                 -- where the attacker may create objects

SET ROLE it_owner;
CREATE TABLE docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL);
INSERT INTO docs SELECT g, 'aaaaaaaa-0000-0000-0000-00000000000a', 'a' || g FROM generate_series(1, 10) g;
INSERT INTO docs SELECT g, 'bbbbbbbb-0000-0000-0000-00000000000b', 'b' || g FROM generate_series(101, 107) g;
SELECT warden.protect_table('docs');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO it_app, it_middleware;
RESET ROLE;

-- The audit trail's tests (tests/audit.rs): a protected, audited table of their own.
SET ROLE it_owner;
CREATE TABLE audit_docs (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, body text NOT NULL, secret text);
SELECT warden.protect_table('audit_docs');
SELECT warden.enable_audit('audit_docs', '{secret}');
GRANT SELECT, INSERT, UPDATE, DELETE ON audit_docs TO it_app, it_middleware;
RESET ROLE;
