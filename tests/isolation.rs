//! Attacks on tenant isolation, as the application role would try them over a real connection
//! while holding tenant A's context. Each test asserts the exact outcome.

use postgres::Client;
use warden_tests::*;

fn authenticate(c: &mut impl postgres::GenericClient, tenant: &str, level: &str) {
    c.execute("SELECT warden.authenticate($1)", &[&token(tenant, level)])
        .unwrap();
}

fn count(c: &mut impl postgres::GenericClient, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

fn current_tenant(c: &mut impl postgres::GenericClient) -> Option<String> {
    c.query_one("SELECT warden.current_tenant()::text", &[])
        .unwrap()
        .get(0)
}

/// Rows of tenant B as the superuser sees them (id, body), to prove nothing changed.
fn b_rows() -> Vec<(i32, String)> {
    admin()
        .query(
            "SELECT id, body FROM docs WHERE tenant_id = $1::text::uuid ORDER BY id",
            &[&TENANT_B],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn reading_b_rows_under_a_sees_none() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "read");
    assert_eq!(count(&mut tx, "SELECT count(*) FROM docs"), ROWS_A);
    assert_eq!(
        count(
            &mut tx,
            &format!("SELECT count(*) FROM docs WHERE tenant_id = '{TENANT_B}'")
        ),
        0
    );
    assert_eq!(
        count(&mut tx, "SELECT count(*) FROM docs WHERE id > 100"),
        0
    );
}

#[test]
fn updating_b_rows_under_a_touches_none() {
    let before = b_rows();
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "admin");
    let n = tx
        .execute(
            &format!("UPDATE docs SET body = 'pwned' WHERE tenant_id = '{TENANT_B}'"),
            &[],
        )
        .unwrap();
    assert_eq!(n, 0);
    let n = tx
        .execute("UPDATE docs SET body = body || '!'", &[])
        .unwrap();
    assert_eq!(n as i64, ROWS_A, "only A's rows are updatable");
    tx.commit().unwrap();
    assert_eq!(b_rows(), before);
    // undo the change to A's rows
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "write");
    tx.execute("UPDATE docs SET body = rtrim(body, '!')", &[])
        .unwrap();
    tx.commit().unwrap();
}

#[test]
fn deleting_b_rows_under_a_touches_none() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "delete");
    assert_eq!(
        tx.execute(
            &format!("DELETE FROM docs WHERE tenant_id = '{TENANT_B}'"),
            &[]
        )
        .unwrap(),
        0
    );
    assert_eq!(
        tx.execute("DELETE FROM docs WHERE id > 100", &[]).unwrap(),
        0
    );
    tx.rollback().unwrap();
    assert_eq!(b_rows().len() as i64, ROWS_B);
}

#[test]
fn inserting_a_row_for_b_under_a_is_refused() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "admin");
    let r = tx.execute(
        &format!("INSERT INTO docs VALUES (900, '{TENANT_B}', 'planted')"),
        &[],
    );
    assert_eq!(sqlstate(r), "42501");
}

#[test]
fn moving_a_row_to_b_is_refused() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "admin");
    let r = tx.execute(
        &format!("UPDATE docs SET tenant_id = '{TENANT_B}' WHERE id = 1"),
        &[],
    );
    assert_eq!(sqlstate(r), "42501");
}

#[test]
fn upsert_onto_a_b_row_is_refused() {
    let before = b_rows();
    let mut c = app();
    // as A, claiming the row for A: the existing row is B's and fails the UPDATE policy
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "admin");
    let r = tx.execute(
        &format!("INSERT INTO docs VALUES (101, '{TENANT_A}', 'stolen') ON CONFLICT (id) DO UPDATE SET body = 'stolen', tenant_id = '{TENANT_A}'"),
        &[],
    );
    assert_eq!(sqlstate(r), "42501");
    tx.rollback().unwrap();
    // as A, inserting with B's tenant id: refused by the INSERT check before any conflict
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "admin");
    let r = tx.execute(
        &format!("INSERT INTO docs VALUES (101, '{TENANT_B}', 'x') ON CONFLICT (id) DO UPDATE SET body = 'overwritten'"),
        &[],
    );
    assert_eq!(sqlstate(r), "42501");
    tx.rollback().unwrap();
    assert_eq!(b_rows(), before);
}

#[test]
fn returning_shows_only_own_rows() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "delete");
    let updated = tx
        .query("UPDATE docs SET body = body RETURNING tenant_id::text", &[])
        .unwrap();
    assert_eq!(updated.len() as i64, ROWS_A);
    assert!(updated.iter().all(|r| r.get::<_, String>(0) == TENANT_A));
    let deleted = tx
        .query("DELETE FROM docs RETURNING tenant_id::text, body", &[])
        .unwrap();
    assert_eq!(deleted.len() as i64, ROWS_A);
    assert!(deleted.iter().all(|r| r.get::<_, String>(0) == TENANT_A));
    tx.rollback().unwrap();
}

#[test]
fn copy_to_exports_only_own_rows_and_copy_from_is_refused() {
    use std::io::{Read, Write};
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "admin");
    let mut out = String::new();
    tx.copy_out("COPY docs TO STDOUT")
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out.lines().count() as i64, ROWS_A);
    assert!(!out.contains(TENANT_B));
    tx.rollback().unwrap();

    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "admin");
    let r = tx.copy_in("COPY docs FROM STDIN").and_then(|mut w| {
        w.write_all(format!("950\t{TENANT_B}\tplanted\n").as_bytes())
            .unwrap();
        w.finish()
    });
    assert_eq!(
        sqlstate(r),
        "0A000",
        "COPY FROM into a table with row level security is refused"
    );
}

#[test]
fn a_view_or_definer_function_owned_by_the_attacker_sees_only_the_context() {
    let mut c = app();
    c.batch_execute(
        "CREATE OR REPLACE VIEW app_scratch.all_docs AS SELECT * FROM docs;
         CREATE OR REPLACE FUNCTION app_scratch.count_all() RETURNS bigint
           LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.docs';",
    )
    .unwrap();
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM app_scratch.all_docs"),
        0,
        "no context: nothing"
    );
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "read");
    assert_eq!(
        count(&mut tx, "SELECT count(*) FROM app_scratch.all_docs"),
        ROWS_A
    );
    assert_eq!(count(&mut tx, "SELECT app_scratch.count_all()"), ROWS_A);
}

#[test]
fn a_prepared_statement_follows_the_context_it_runs_under() {
    let mut c = app();
    c.batch_execute("SET plan_cache_mode = force_generic_plan")
        .unwrap();
    let stmt = {
        let mut tx = c.transaction().unwrap();
        authenticate(&mut tx, TENANT_A, "read");
        let stmt = tx.prepare("SELECT count(*), count(*) FILTER (WHERE tenant_id <> warden.current_tenant()) FROM docs").unwrap();
        let row = tx.query_one(&stmt, &[]).unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (ROWS_A, 0));
        tx.commit().unwrap();
        stmt
    };
    for _ in 0..7 {
        let mut tx = c.transaction().unwrap();
        authenticate(&mut tx, TENANT_B, "read");
        let row = tx.query_one(&stmt, &[]).unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (ROWS_B, 0));
        tx.commit().unwrap();
    }
    let row = c.query_one(&stmt, &[]).unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "executed with no context: nothing");
}

#[test]
fn set_and_set_config_cannot_forge_the_context() {
    // the carrier is settable, but its check hook verifies the token exactly as authenticate does
    let mut c = app();
    let forged = with_payload(
        &token(TENANT_A, "read"),
        &format!(
            r#"{{"tenant_id":"{TENANT_B}","sub":"{ACTOR}","role":"admin","exp":{}}}"#,
            now() + 300
        ),
    );
    for sql in [
        format!("SET warden.context_token = '{forged}'"),
        format!("SET LOCAL warden.context_token = '{forged}'"),
        format!("SET warden.context_token = '{}'", unsigned(TENANT_B)),
        "SET warden.context_token = 'x'".to_string(),
    ] {
        assert_eq!(sqlstate(c.batch_execute(&sql)), "28000", "{sql}");
    }
    assert_eq!(
        sqlstate(c.query(
            "SELECT set_config('warden.context_token', $1, true)",
            &[&forged]
        )),
        "28000"
    );
    assert_eq!(
        sqlstate(c.batch_execute(&format!("SET warden.tenant_id = '{TENANT_B}'"))),
        "42602"
    );
    assert_eq!(
        sqlstate(c.batch_execute("SET warden.jwt_secret = 'attacker-secret-attacker-secret-123'")),
        "42501"
    );
    assert_eq!(
        sqlstate(c.query("SELECT current_setting('warden.context_token')", &[])),
        "42501"
    );
    assert_eq!(current_tenant(&mut c), None);
    assert_eq!(count(&mut c, "SELECT count(*) FROM docs"), 0);
}

#[test]
fn set_local_of_a_valid_token_is_a_context_for_that_transaction_only() {
    // the way Citus forwards the context to worker nodes
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(&format!(
        "SET LOCAL warden.context_token = '{}'",
        token(TENANT_A, "read")
    ))
    .unwrap();
    assert_eq!(count(&mut tx, "SELECT count(*) FROM docs"), ROWS_A);
    tx.commit().unwrap();
    assert_eq!(count(&mut c, "SELECT count(*) FROM docs"), 0);
    assert_eq!(current_tenant(&mut c), None);
}

#[test]
fn a_session_level_value_never_reaches_a_later_transaction() {
    let mut c = app();
    // SET without LOCAL is refused, even with a valid token, inside or outside a transaction
    let set = format!("SET warden.context_token = '{}'", token(TENANT_A, "admin"));
    assert_eq!(sqlstate(c.batch_execute(&set)), "22023");
    let mut tx = c.transaction().unwrap();
    assert_eq!(sqlstate(tx.batch_execute(&set)), "22023");
    drop(tx);
    // set_config() would return the token, which only superusers may read: refused outright
    assert_eq!(
        sqlstate(c.query(
            "SELECT set_config('warden.context_token', $1, false)",
            &[&token(TENANT_B, "admin")],
        )),
        "42501"
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM docs"), 0);
    // a superuser can still store a session-level value with set_config(): it is never a context,
    // neither in this transaction nor in the next one on the same connection
    let mut su = admin();
    su.query(
        "SELECT set_config('warden.context_token', $1, false)",
        &[&token(TENANT_B, "admin")],
    )
    .unwrap();
    assert_eq!(current_tenant(&mut su), None);
    let mut tx = su.transaction().unwrap();
    assert_eq!(current_tenant(&mut tx), None);
    tx.commit().unwrap();
    assert_eq!(current_tenant(&mut su), None);
}

#[test]
fn the_carrier_cannot_come_from_connection_options_or_role_settings() {
    let dsn = format!(
        "host={} port={} dbname={} user=it_app options='-c warden.context_token={}'",
        std::env::var("WARDEN_TEST_HOST").unwrap(),
        std::env::var("WARDEN_TEST_PORT").unwrap(),
        std::env::var("WARDEN_TEST_DB").unwrap(),
        token(TENANT_A, "admin")
    );
    let refused = postgres::Client::connect(&dsn, postgres::NoTls);
    assert_eq!(sqlstate(refused.map(|_| ())), "22023");
    let mut admin = admin();
    assert_eq!(
        sqlstate(admin.batch_execute(&format!(
            "ALTER ROLE it_app SET warden.context_token = '{}'",
            token(TENANT_A, "admin")
        ))),
        "22023"
    );
    assert_eq!(
        sqlstate(admin.batch_execute(&format!(
            "ALTER DATABASE warden_it SET warden.context_token = '{}'",
            token(TENANT_A, "admin")
        ))),
        "22023"
    );
}

#[test]
fn shadowing_functions_operators_and_search_path_changes_nothing() {
    let mut c = app();
    c.batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION app_scratch.current_tenant() RETURNS uuid LANGUAGE sql AS $$ SELECT '{TENANT_B}'::uuid $$;
         CREATE OR REPLACE FUNCTION app_scratch.tenant_with_level(text) RETURNS uuid LANGUAGE sql AS $$ SELECT '{TENANT_B}'::uuid $$;
         CREATE OR REPLACE FUNCTION app_scratch.always(uuid, uuid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
         DROP OPERATOR IF EXISTS app_scratch.= (uuid, uuid);
         CREATE OPERATOR app_scratch.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = app_scratch.always);
         CREATE OR REPLACE FUNCTION pg_temp.current_tenant() RETURNS uuid LANGUAGE sql AS $$ SELECT '{TENANT_B}'::uuid $$;
         SET search_path = app_scratch, pg_catalog, public;"
    ))
    .unwrap();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "read");
    assert_eq!(count(&mut tx, "SELECT count(*) FROM public.docs"), ROWS_A);
    // the attacker's own `=` now matches everything, yet only A's rows exist for it
    let b_rows = format!("SELECT count(*) FROM public.docs WHERE tenant_id::text OPERATOR(pg_catalog.=) '{TENANT_B}'");
    assert_eq!(count(&mut tx, &b_rows), 0);
    let a_rows = format!("SELECT count(*) FROM public.docs WHERE tenant_id = '{TENANT_A}'::uuid");
    assert_eq!(count(&mut tx, &a_rows), ROWS_A);
    let t: Option<String> = tx
        .query_one("SELECT warden.current_tenant()::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(t.as_deref(), Some(TENANT_A));
}

#[test]
fn forged_and_invalid_tokens_are_refused_with_28000() {
    let secret = secret();
    let valid = token(TENANT_A, "read");
    let swapped = with_payload(
        &valid,
        &format!(
            r#"{{"tenant_id":"{TENANT_B}","sub":"{ACTOR}","role":"admin","exp":{}}}"#,
            now() + 300
        ),
    );
    let cases = [
        ("alg none", unsigned(TENANT_B)),
        (
            "bad signature",
            sign(
                &Claims {
                    tenant_id: TENANT_B,
                    sub: ACTOR,
                    role: "read",
                    exp: now() + 300,
                    nbf: None,
                    iat: None,
                },
                "not-the-server-secret-0123456789abcdef",
            ),
        ),
        ("swapped tenant claim", swapped),
        (
            "expired",
            sign(
                &Claims {
                    tenant_id: TENANT_A,
                    sub: ACTOR,
                    role: "read",
                    exp: now() - 10,
                    nbf: None,
                    iat: None,
                },
                &secret,
            ),
        ),
        (
            "not yet valid",
            sign(
                &Claims {
                    tenant_id: TENANT_A,
                    sub: ACTOR,
                    role: "read",
                    exp: now() + 600,
                    nbf: Some(now() + 300),
                    iat: None,
                },
                &secret,
            ),
        ),
        ("malformed", "definitely.not.a-jwt".to_string()),
    ];
    for (what, t) in cases {
        let mut c = app();
        let r = c.execute("SELECT warden.authenticate($1)", &[&t]);
        assert_eq!(sqlstate(r), "28000", "{what}");
        assert_eq!(
            current_tenant(&mut c),
            None,
            "{what}: no context after a refusal"
        );
    }
}

#[test]
fn a_refused_token_does_not_replace_a_valid_context_silently() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "read");
    tx.batch_execute("SAVEPOINT s").unwrap();
    assert_eq!(
        sqlstate(tx.execute("SELECT warden.authenticate($1)", &[&unsigned(TENANT_B)])),
        "28000"
    );
    tx.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    assert_eq!(current_tenant(&mut tx).as_deref(), Some(TENANT_A));
    assert_eq!(count(&mut tx, "SELECT count(*) FROM docs"), ROWS_A);
}

#[test]
fn the_context_ends_with_commit_and_with_rollback() {
    let mut c = app();
    for end in ["COMMIT", "ROLLBACK"] {
        c.batch_execute("BEGIN").unwrap();
        authenticate(&mut c, TENANT_A, "read");
        assert_eq!(count(&mut c, "SELECT count(*) FROM docs"), ROWS_A);
        c.batch_execute(end).unwrap();
        assert_eq!(current_tenant(&mut c), None, "after {end}");
        assert_eq!(count(&mut c, "SELECT count(*) FROM docs"), 0, "after {end}");
    }
    // outside an explicit transaction the context lasts for that one statement's transaction
    authenticate(&mut c, TENANT_A, "read");
    assert_eq!(count(&mut c, "SELECT count(*) FROM docs"), 0);
}

#[test]
fn rollback_to_savepoint_restores_the_earlier_context() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "read");
    tx.batch_execute("SAVEPOINT s").unwrap();
    authenticate(&mut tx, TENANT_B, "read");
    assert_eq!(count(&mut tx, "SELECT count(*) FROM docs"), ROWS_B);
    tx.batch_execute("ROLLBACK TO SAVEPOINT s").unwrap();
    assert_eq!(current_tenant(&mut tx).as_deref(), Some(TENANT_A));
    assert_eq!(count(&mut tx, "SELECT count(*) FROM docs"), ROWS_A);
}

#[test]
fn without_context_nothing_is_visible_or_writable() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    assert_eq!(count(&mut tx, "SELECT count(*) FROM docs"), 0);
    assert_eq!(tx.execute("UPDATE docs SET body = 'x'", &[]).unwrap(), 0);
    assert_eq!(tx.execute("DELETE FROM docs", &[]).unwrap(), 0);
    assert_eq!(
        sqlstate(tx.execute(
            &format!("INSERT INTO docs VALUES (960, '{TENANT_A}', 'x')"),
            &[]
        )),
        "42501"
    );
}

#[test]
fn levels_gate_each_command() {
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "read");
    assert_eq!(
        sqlstate(tx.execute(
            &format!("INSERT INTO docs VALUES (970, '{TENANT_A}', 'x')"),
            &[]
        )),
        "42501"
    );
    tx.rollback().unwrap();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "read");
    assert_eq!(
        tx.execute("UPDATE docs SET body = 'x'", &[]).unwrap(),
        0,
        "read cannot update"
    );
    tx.rollback().unwrap();
    let mut tx = c.transaction().unwrap();
    authenticate(&mut tx, TENANT_A, "write");
    assert_eq!(
        tx.execute(
            &format!("INSERT INTO docs VALUES (970, '{TENANT_A}', 'x')"),
            &[]
        )
        .unwrap(),
        1
    );
    assert_eq!(
        tx.execute("DELETE FROM docs", &[]).unwrap(),
        0,
        "write cannot delete"
    );
    tx.rollback().unwrap();
}

#[test]
fn only_the_middleware_role_may_set_context() {
    let mut c = app();
    let r = c.execute(
        "SELECT warden.set_context($1::text::uuid, $2::text::uuid, 'admin')",
        &[&TENANT_B, &ACTOR],
    );
    assert_eq!(sqlstate(r), "42501");
    let mut m: Client = connect("it_middleware");
    let mut tx = m.transaction().unwrap();
    tx.execute(
        "SELECT warden.set_context($1::text::uuid, $2::text::uuid, 'read')",
        &[&TENANT_B, &ACTOR],
    )
    .unwrap();
    assert_eq!(count(&mut tx, "SELECT count(*) FROM docs"), ROWS_B);
}
