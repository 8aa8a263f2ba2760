-- Audit benchmark (benches/audit.sh): five copies of one protected table, 8 tenants x 20,000 rows.
--   w_a  no audit
--   w_b  a PL/pgSQL jsonb audit trigger like supa_audit's (to_jsonb of the row into a table with
--        supa_audit's indexes: record id, table oid, BRIN on time)
--   w_c  pgaudit: no trigger; the role bench_pgaudit runs with pgaudit.log = 'write'
--   w_d  warden.enable_audit(): hash-chained events, sealed by warden's worker
--   w_e  the naive chain: a PL/pgSQL trigger that takes one global advisory lock, reads the last
--        event's hash and inserts the next event with SHA-256(prev || row) computed in the writer
CREATE EXTENSION IF NOT EXISTS warden;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE ROLE bench_app LOGIN IN ROLE warden_context_setter;
CREATE ROLE bench_pgaudit LOGIN IN ROLE warden_context_setter;
ALTER ROLE bench_pgaudit SET pgaudit.log = 'write';
ALTER ROLE bench_pgaudit SET pgaudit.log_relation = off;

CREATE TABLE w_a (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, amount int NOT NULL, note text NOT NULL,
                  at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON w_a (tenant_id);
INSERT INTO w_a (tenant_id, amount, note)
SELECT ('00000000-0000-0000-0000-' || lpad((i % 8)::text, 12, '0'))::uuid, i % 1000, md5(i::text)
  FROM generate_series(1, 160000) i;
CREATE TABLE w_b (LIKE w_a INCLUDING ALL);
CREATE TABLE w_c (LIKE w_a INCLUDING ALL);
CREATE TABLE w_d (LIKE w_a INCLUDING ALL);
CREATE TABLE w_e (LIKE w_a INCLUDING ALL);
INSERT INTO w_b SELECT * FROM w_a;
INSERT INTO w_c SELECT * FROM w_a;
INSERT INTO w_d SELECT * FROM w_a;
INSERT INTO w_e SELECT * FROM w_a;
SELECT setval(pg_get_serial_sequence(t, 'id'), 160000) FROM unnest(ARRAY['w_a', 'w_b', 'w_c', 'w_d', 'w_e']) t;
SELECT warden.protect_table(t::regclass) FROM unnest(ARRAY['w_a', 'w_b', 'w_c', 'w_d', 'w_e']) t;
GRANT SELECT, INSERT, UPDATE ON w_a, w_b, w_c, w_d, w_e TO bench_app, bench_pgaudit;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO bench_app, bench_pgaudit;

-- (b) supa_audit's shape
CREATE SCHEMA audit_b;
CREATE TABLE audit_b.record_version (
    id bigserial PRIMARY KEY, record_id text, old_record_id text, op text NOT NULL,
    ts timestamptz NOT NULL DEFAULT now(), table_oid oid NOT NULL, table_schema name NOT NULL,
    table_name name NOT NULL, record jsonb, old_record jsonb);
CREATE INDEX ON audit_b.record_version (record_id) WHERE record_id IS NOT NULL;
CREATE INDEX ON audit_b.record_version (old_record_id) WHERE old_record_id IS NOT NULL;
CREATE INDEX ON audit_b.record_version USING brin (ts);
CREATE INDEX ON audit_b.record_version (table_oid);
CREATE FUNCTION audit_b.trigger() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    INSERT INTO audit_b.record_version (record_id, old_record_id, op, table_oid, table_schema, table_name, record, old_record)
    VALUES (CASE WHEN TG_OP <> 'DELETE' THEN NEW.id::text END, CASE WHEN TG_OP <> 'INSERT' THEN OLD.id::text END,
            TG_OP, TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME,
            CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END, CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
    RETURN coalesce(NEW, OLD);
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON w_b FOR EACH ROW EXECUTE FUNCTION audit_b.trigger();

-- (d) warden
SELECT warden.enable_audit('w_d');

-- (e) the naive chain
CREATE SCHEMA audit_e;
CREATE TABLE audit_e.events (id bigint PRIMARY KEY, at timestamptz NOT NULL, tenant uuid, op text NOT NULL,
                             row_data jsonb, prev_hash bytea NOT NULL, hash bytea NOT NULL);
CREATE FUNCTION audit_e.trigger() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    last record;
    doc jsonb := CASE WHEN TG_OP = 'DELETE' THEN to_jsonb(OLD) ELSE to_jsonb(NEW) END;
    ts timestamptz := clock_timestamp();
BEGIN
    PERFORM pg_advisory_xact_lock(424242);
    SELECT e.id, e.hash INTO last FROM audit_e.events e ORDER BY e.id DESC LIMIT 1;
    INSERT INTO audit_e.events VALUES (
        coalesce(last.id, 0) + 1, ts, (doc->>'tenant_id')::uuid, TG_OP, doc,
        coalesce(last.hash, '\x00'::bytea),
        digest(coalesce(last.hash, '\x00'::bytea) || convert_to(ts::text || TG_OP || doc::text, 'UTF8'), 'sha256'));
    RETURN coalesce(NEW, OLD);
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON w_e FOR EACH ROW EXECUTE FUNCTION audit_e.trigger();
VACUUM ANALYZE;
