-- Shared setup for the warden regression suite (committed; every other file runs in begin/rollback).
-- pg_regress created this database with --load-extension=warden.
SELECT extname, extversion IS NOT NULL AS has_version FROM pg_extension WHERE extname = 'warden';

-- Roles are cluster-wide, so they may exist from an earlier run against the same cluster:
-- regress_owner owns the tables (like a migration role), regress_app is the application
-- (no superuser, no BYPASSRLS), regress_middleware is trusted auth middleware.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_owner') THEN
        CREATE ROLE regress_owner NOLOGIN;
        CREATE ROLE regress_app NOLOGIN;
        CREATE ROLE regress_middleware NOLOGIN IN ROLE warden_context_setter;
    END IF;
END
$$;
GRANT CREATE ON SCHEMA public TO regress_owner;
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO regress_owner', current_database()); END $$;

-- regress_try(sql): runs sql and returns 'ok' or "SQLSTATE: message" plus the hint, so that error
-- codes are part of the expected output without the file:line location of a Rust error.
CREATE FUNCTION regress_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; hint text;
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || coalesce(E'\nHINT: ' || nullif(hint, ''), '');
END
$$;

-- regress_policies(tbl): the policies on a table, as the catalog stores them.
CREATE FUNCTION regress_policies(tbl regclass)
RETURNS TABLE (policyname name, cmd text, qual text, with_check text) LANGUAGE sql AS $$
    SELECT p.polname,
           CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
           pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
      FROM pg_policy p WHERE p.polrelid = tbl ORDER BY p.polname
$$;
