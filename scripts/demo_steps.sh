#!/usr/bin/env bash
# The demo itself; scripts/demo.sh sets up the machine and the cluster, then runs this.
set -uo pipefail
ACME=00000000-0000-0000-0000-00000000acee
GLOBEX=00000000-0000-0000-0000-0000000b10be
ALICE=00000000-0000-0000-0000-0000000a11ce
MINT="python3 $(dirname "$0")/mint_jwt.py $WARDEN_JWT_SECRET"

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }
explain() { printf '\033[0;36m   %s\033[0m\n' "$*"; }
dba() { psql -X -q -d demo -v ON_ERROR_STOP=1 "$@"; }
# app SQL: runs as the ordinary login role "app" (no superuser, no BYPASSRLS); errors are shown, not fatal.
app() { psql -X -q -d demo -U app -v VERBOSITY=default "$@" 2>&1 | sed 's/^/   /'; }

step "1. The DBA installs warden and protects a table"
explain "One call: RLS enabled and forced, one policy per command, TRUNCATE revoked, tenant index created."
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS demo" -c "CREATE DATABASE demo"
dba <<'SQL'
CREATE EXTENSION warden;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app LOGIN; END IF;
END $$;
CREATE TABLE docs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant_id uuid NOT NULL, title text NOT NULL);
INSERT INTO docs (tenant_id, title) VALUES
  ('00000000-0000-0000-0000-00000000acee', 'Acme: roadmap'),
  ('00000000-0000-0000-0000-00000000acee', 'Acme: payroll'),
  ('00000000-0000-0000-0000-00000000acee', 'Acme: board minutes'),
  ('00000000-0000-0000-0000-0000000b10be', 'Globex: merger plan'),
  ('00000000-0000-0000-0000-0000000b10be', 'Globex: salaries');
GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO app;
SELECT warden.protect_table('docs') \g /dev/null
\echo '   protected tables:'
SELECT relid, tenant_column, kind FROM warden.protected_tables;
SQL

step "2. The application connects without a context: it sees nothing"
app -c "SELECT count(*) AS rows_visible FROM docs"
explain "Fail closed: no authenticated tenant means zero rows and no writes."

step "3. Acme's user authenticates with a JWT from the auth server"
T_ACME=$($MINT $ACME $ALICE write)
app -v token="$T_ACME" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'token') \g /dev/null
\echo '   authenticated; warden now says:'
SELECT warden.current_tenant() AS tenant, warden.current_level() AS level;
SELECT id, title FROM docs ORDER BY id;
COMMIT;
SQL
explain "Only Acme's three documents are visible."

step "4. Globex's user sees only Globex's rows, on the same table"
T_GLOBEX=$($MINT $GLOBEX $ALICE read)
app -v token="$T_GLOBEX" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'token') \g /dev/null
SELECT id, title FROM docs ORDER BY id;
COMMIT;
SQL

step "5. An injected statement tries to cross the line while authenticated as Acme"
app -v token="$T_ACME" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'token') \g /dev/null
\echo '   -- read Globex rows by filtering on their tenant id:'
SELECT count(*) AS globex_rows_seen FROM docs WHERE tenant_id = '00000000-0000-0000-0000-0000000b10be';
\echo '   -- rewrite or delete every row in the table:'
WITH u AS (UPDATE docs SET title = 'pwned' RETURNING tenant_id) SELECT count(*) FILTER (WHERE tenant_id <> warden.current_tenant()) AS other_tenant_rows_updated FROM u;
WITH d AS (DELETE FROM docs WHERE title LIKE 'Globex%' RETURNING 1) SELECT count(*) AS globex_rows_deleted FROM d;
\echo '   -- plant a row in Globex''s data:'
SAVEPOINT s;
INSERT INTO docs (tenant_id, title) VALUES ('00000000-0000-0000-0000-0000000b10be', 'planted');
ROLLBACK TO s;
\echo '   -- TRUNCATE, which ignores row level security:'
TRUNCATE docs;
ROLLBACK;
SQL
explain "Globex rows are invisible (0 seen, UPDATE 0, DELETE 0); the planted row and TRUNCATE are refused."

step "6. Forging the context is refused"
app <<'SQL'
\echo '   -- SET the setting that carries the context:'
SET warden.context_token = 'eyJhbGciOiJub25lIn0.e30.';
\echo '   -- invent a setting of its own:'
SELECT set_config('warden.tenant_id', '00000000-0000-0000-0000-0000000b10be', false);
\echo '   -- call the trusted setter reserved for the auth middleware:'
SELECT warden.set_context('00000000-0000-0000-0000-0000000b10be', '00000000-0000-0000-0000-0000000a11ce', 'admin');
SQL
FORGED=$(python3 - "$T_ACME" <<'PY'
import base64, json, sys
h, p, s = sys.argv[1].split('.')
claims = json.loads(base64.urlsafe_b64decode(p + '=='))
claims['tenant_id'] = '00000000-0000-0000-0000-0000000b10be'
p = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()
print(f'{h}.{p}.{s}')
PY
)
NONE=$(python3 -c "import base64,json,sys,time; e=lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b'=').decode(); print(e({'alg':'none'})+'.'+e({'tenant_id':'00000000-0000-0000-0000-0000000b10be','sub':'00000000-0000-0000-0000-0000000a11ce','role':'admin','exp':int(time.time())+300})+'.')")
explain "-- Acme's token with the tenant claim swapped to Globex:"
app -v token="$FORGED" <<'SQL'
SELECT warden.authenticate(:'token');
SQL
explain "-- an unsigned token (alg none):"
app -v token="$NONE" <<'SQL'
SELECT warden.authenticate(:'token');
SQL

step "7. The context ends with the transaction (safe behind PgBouncer)"
app -v token="$T_ACME" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'token') \g /dev/null
SELECT count(*) AS rows_inside_transaction FROM docs;
COMMIT;
SELECT count(*) AS rows_after_commit FROM docs;
SQL

step "8. Compliance view: coverage of row level security"
dba <<'SQL'
CREATE TABLE audit_notes (id int, note text);
SELECT table_name, rls_enabled, rls_forced, policy_count, protected, problem FROM warden.rls_coverage ORDER BY table_name;
SELECT warden.rls_coverage_percent() AS percent_protected;
SQL
explain "audit_notes was never protected, and the view says why it matters."

step "9. The audit trail: every step above is on record, and provably so"
dba <<'SQL'
SELECT warden.seal_audit() \g /dev/null
SELECT id, action, status, coalesce(resource_id, '') AS resource, coalesce(changes->>'reason', changes->>'statement', '') AS detail
  FROM warden.audit_trail ORDER BY id;
SELECT intact, checked FROM warden.verify_audit();
SQL
explain "The failed authentications of step 6 were recorded although their transactions failed;"
explain "the DBA's grants and warden's own calls without any call from the application."

step "10. A legal hold: Acme's documents become evidence"
dba -v acme="$ACME" <<'SQL'
SELECT warden.place_hold('CASE-2026-114', 'subpoena', :'acme') \g /dev/null
SELECT case_ref, scope, active FROM warden.legal_holds;
SQL
T_ACME_DEL=$($MINT $ACME $ALICE delete)
app -v token="$T_ACME_DEL" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'token') \g /dev/null
DELETE FROM docs WHERE title = 'Acme: payroll';
ROLLBACK;
SQL
for stmt in "TRUNCATE docs" "DROP TABLE docs"; do
    psql -X -q -d demo -c "$stmt" 2>&1 | sed 's/^/   /' || true
done
dba <<'SQL'
SELECT pg_sleep(0.5) \g /dev/null
SELECT action, status, changes->>'operation' AS operation, changes->>'case_ref' AS case_ref
  FROM warden.audit_trail WHERE action = 'hold_violation' ORDER BY id;
SQL
explain "The application's DELETE and the DBA's TRUNCATE and DROP TABLE are refused while the hold stands,"
explain "and each attempt is on record although its transaction failed."

step "11. GDPR: erasure waits for the hold, then leaves no value in the table or the trail"
dba -v acme="$ACME" <<'SQL'
CREATE TABLE users (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, email text, name text NOT NULL);
SELECT warden.protect_table('users') \g /dev/null
SELECT warden.enable_audit('users') \g /dev/null
SELECT warden.register_personal_data('users', 'id', '{email}', 'hash') \g /dev/null
SELECT warden.register_personal_data('users', 'id', '{name}', 'redact') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON users TO app;
INSERT INTO users VALUES ('00000000-0000-0000-0000-0000000b0b00', :'acme', 'bob@acme.example', 'Bob');
SQL
CTX="SELECT warden.set_context('$ACME', '$ALICE', 'admin')"
ERASE="SELECT warden.erase_subject('00000000-0000-0000-0000-0000000b0b00', 'Art. 17 request') -> 'tables' AS erased"
psql -X -q -d demo -o /dev/null -c "BEGIN" -c "$CTX" -c "$ERASE" -c "COMMIT" 2>&1 | sed 's/^/   /' || true
explain "Acme's hold covers Bob's data too (GDPR Art. 17(3)(e)): nothing is erased, and the refusal is on record."
dba <<SQL
SELECT warden.release_hold(id, 'case settled') FROM warden.legal_holds WHERE case_ref = 'CASE-2026-114' \g /dev/null
BEGIN;
$CTX \g /dev/null
$ERASE;
COMMIT;
SELECT name, left(email, 16) || '...' AS email FROM users;
SELECT warden.seal_audit() \g /dev/null
SELECT action, status, changes FROM warden.audit_trail
 WHERE resource_type = 'public.users' OR action = 'erase_subject' ORDER BY id;
SQL
explain "The trail holds keyed hashes where the values were, <erased> for what erasure replaced,"
explain "and the erasure itself as an event without a single erased value."

step "12. An API key for a service: hashed, scoped, refused once revoked"
dba <<SQL
CREATE TABLE invoices (id int PRIMARY KEY, tenant_id uuid NOT NULL, total numeric NOT NULL);
INSERT INTO invoices VALUES (1, '$ACME', 120), (2, '$ACME', 80), (3, '$GLOBEX', 999);
SELECT warden.protect_table('invoices', namespace => 'billing', resource_type => 'invoice') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON invoices TO app;
SQL
KEY=$(psql -X -qtA -d demo -c "BEGIN" -c "SELECT warden.set_context('$ACME', '$ALICE', 'admin')" \
      -c "SELECT warden.create_api_key('reporting', 'read', '{billing:invoice:read}')" -c "COMMIT" | grep '^wdn_')
explain "create_api_key returned ${KEY:0:20}... once; the database keeps its SHA-256 only:"
dba -c "SELECT name, 'wdn_' || public_id AS display_prefix, level, scopes, length(key_hash) AS sha256_bytes FROM warden.api_key_records"
app -v key="$KEY" <<'SQL'
BEGIN;
SELECT warden.authenticate_key(:'key') \g /dev/null
SELECT id, total FROM invoices ORDER BY id;
WITH u AS (UPDATE invoices SET total = 0 RETURNING 1) SELECT count(*) AS rows_updated FROM u;
ROLLBACK;
SELECT warden.authenticate_key(upper(:'key'));
SQL
explain "The key reads its tenant's invoices; its billing:invoice:read scope writes nothing; a case-changed key is refused."
psql -X -q -d demo -o /dev/null -c "BEGIN" -c "SELECT warden.set_context('$ACME', '$ALICE', 'admin')" \
    -c "SELECT warden.revoke_api_key(id, 'rotated') FROM warden.api_keys WHERE name = 'reporting'" -c "COMMIT"
app -v key="$KEY" -c "SELECT warden.authenticate_key('$KEY')"

step "13. Encryption at rest: tenant keys, aad bound to the row, nothing for another tenant"
dba <<SQL
CREATE TABLE cards (id int PRIMARY KEY, tenant_id uuid NOT NULL, number bytea);
SELECT warden.protect_table('cards') \g /dev/null
GRANT SELECT, INSERT, UPDATE ON cards TO app;
BEGIN;
SELECT warden.set_context('$ACME', '$ALICE', 'admin') \g /dev/null
SELECT warden.create_key('cards') \g /dev/null
INSERT INTO cards VALUES (1, '$ACME', warden.encrypt('4111 1111 1111 1111', 'cards', '1')),
                         (2, '$ACME', warden.encrypt('5500 0000 0000 0004', 'cards', '2'));
COMMIT;
SELECT id, encode(substr(number, 1, 12), 'hex') || '...' AS stored FROM cards ORDER BY id;
SQL
T_ACME_READ=$($MINT $ACME $ALICE read)
T_ACME_WRITE=$($MINT $ACME $ALICE write)
T_GLOBEX=$($MINT $GLOBEX $ALICE admin)
app -v acme="$T_ACME_WRITE" -v globex="$T_GLOBEX" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'acme') \g /dev/null
SELECT id, warden.decrypt_text(number, id::text::bytea) AS number FROM cards ORDER BY id;
UPDATE cards SET number = (SELECT number FROM cards WHERE id = 2) WHERE id = 1;
SELECT warden.decrypt_text(number, id::text::bytea) FROM cards WHERE id = 1;
ROLLBACK;
BEGIN;
SELECT warden.authenticate(:'globex') \g /dev/null
SELECT warden.decrypt(warden.encrypt('x'::text, 'cards'));
ROLLBACK;
SQL
explain "A ciphertext moved to another row does not decrypt; Globex has no key named cards, and could not use Acme's."

step "14. Classification: PHI must stay protected and audited, and every read is on record"
dba <<SQL
CREATE TABLE patients (id int PRIMARY KEY, tenant_id uuid NOT NULL, diagnosis text);
INSERT INTO patients SELECT g, '$ACME', 'dx ' || g FROM generate_series(1, 25) g;
GRANT SELECT ON patients TO app;
SQL
psql -X -q -d demo -c "SELECT warden.classify('patients', 'PHI')" 2>&1 | sed 's/^/   /' || true
dba <<SQL
SELECT warden.protect_table('patients') \g /dev/null
SELECT warden.enable_audit('patients') \g /dev/null
SELECT warden.classify('patients', 'PHI') \g /dev/null
SELECT target, level, protected, audited, compliant FROM warden.classifications;
SQL
psql -X -q -d demo -c "ALTER TABLE patients DISABLE TRIGGER warden_audit_row" 2>&1 | sed 's/^/   /' || true
app -v acme="$T_ACME_READ" <<'SQL'
BEGIN;
SELECT warden.authenticate(:'acme') \g /dev/null
SELECT id, diagnosis FROM patients WHERE id <= 3 ORDER BY id;
COMMIT;
SQL
dba <<'SQL'
SELECT pg_sleep(0.5) \g /dev/null
SELECT action, status, resource_id AS "table", changes ->> 'rows' AS rows_returned, actor
  FROM warden.audit_trail WHERE action = 'phi_read' ORDER BY id;
SQL
explain "Classifying waits for protection and auditing; DDL that would undo them is refused; the read is an event,"
explain "one per statement, with the rows it returned, written without slowing the read down."

step "15. Posture and compliance: what an auditor or an attacker would find, and the report to attach"
explain "A table the DBA forgot, a view owned by a superuser over a protected table: both are holes in isolation."
dba <<'SQL'
CREATE TABLE shipments (id int PRIMARY KEY, tenant_id uuid NOT NULL, address text);
CREATE VIEW all_docs AS SELECT * FROM docs;
SELECT * FROM warden.verify_audit() \g /dev/null
SELECT * FROM warden.audit_digest() \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
SELECT rule, severity, object, remediation FROM warden.security_lint() ORDER BY severity = 'critical' DESC, severity = 'high' DESC, rule;
SELECT c ->> 'framework' AS framework, c ->> 'control' AS control, c ->> 'status' AS status, c ->> 'gap' AS gap
  FROM jsonb_array_elements(warden.compliance_report() -> 'controls') c;
SQL
explain "Each finding carries its fix; the report maps them to SOC 2 and ISO 27001 controls with live evidence."
REPORT=${TMPDIR:-/tmp}/warden-demo-compliance.md
psql -X -q -A -t -d demo -c "SELECT warden.compliance_report_markdown()" >"$REPORT"
explain "warden.compliance_report_markdown() is the same as a document to attach: $REPORT ($(wc -l <"$REPORT") lines)."
