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

-- Legal holds and data-subject rights (tests/holds.rs): tenants cccc... and dddd..., tables of
-- their own, so that the holds placed there never touch what the other tests delete.
SET ROLE it_owner;
CREATE TABLE hold_docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
INSERT INTO hold_docs SELECT g, CASE WHEN g <= 10 THEN 'cccccccc-0000-0000-0000-00000000000c'::uuid
                                     ELSE 'dddddddd-0000-0000-0000-00000000000d'::uuid END, 'h' || g
  FROM generate_series(1, 20) g;
CREATE TABLE hold_people (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, email text, name text);
CREATE TABLE hold_members (tenant_id uuid NOT NULL, actor_id uuid NOT NULL, role text NOT NULL);
SELECT warden.protect_table('hold_docs'), warden.protect_table('hold_people'), warden.protect_table('hold_members');
SELECT warden.register_personal_data('hold_people', 'id', '{email,name}', 'redact');
SELECT warden.register_memberships('hold_members', 'actor_id', 'role');
GRANT SELECT, INSERT, UPDATE, DELETE ON hold_docs, hold_people, hold_members TO it_app, it_middleware;
RESET ROLE;

-- API keys, encryption and classification (tests/keys.rs): tenant eeee..., a table whose policies
-- check API key scopes (docs:document), and a PHI table.
SET ROLE it_owner;
CREATE TABLE key_docs (id int PRIMARY KEY, tenant_id uuid NOT NULL, body text);
INSERT INTO key_docs SELECT g, 'eeeeeeee-0000-0000-0000-00000000000e', 'k' || g FROM generate_series(1, 5) g;
SELECT warden.protect_table('key_docs', namespace => 'docs', resource_type => 'document');
CREATE TABLE phi_people (id int PRIMARY KEY, tenant_id uuid NOT NULL, dx text);
INSERT INTO phi_people SELECT g, 'eeeeeeee-0000-0000-0000-00000000000e', 'dx' || g FROM generate_series(1, 30) g;
SELECT warden.protect_table('phi_people');
SELECT warden.enable_audit('phi_people');
SELECT warden.classify('phi_people', 'PHI');
GRANT SELECT, INSERT, UPDATE, DELETE ON key_docs, phi_people TO it_app, it_middleware;
RESET ROLE;
