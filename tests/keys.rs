//! API keys, encryption and the PHI read log over real connections: a key authenticating every
//! transaction through PgBouncer without turning reads into writes and with `last_used_at` written
//! by the worker at most once a minute, revocation reaching every session at its next
//! transaction, a destroyed key refused in a session that used it a moment before, and a PHI read
//! that fails after it started still on record after the rollback.

use std::time::{Duration, Instant};

use postgres::Client;
use warden_tests::*;

const TENANT_E: &str = "eeeeeeee-0000-0000-0000-00000000000e";

/// Sets a context of tenant E at `level` in `tx`, as the trusted middleware does.
fn in_tenant_e(tx: &mut postgres::Transaction<'_>, level: &str) {
    tx.execute(
        "SELECT warden.set_context($1::text::uuid, $2::text::uuid, $3)",
        &[&TENANT_E, &ACTOR, &level],
    )
    .unwrap();
}

/// A key created for tenant E by trusted middleware at `level` with `scopes`, committed.
fn create_key(name: &str, level: &str, scopes: &str) -> String {
    let mut m = connect("it_middleware");
    let mut tx = m.transaction().unwrap();
    in_tenant_e(&mut tx, "admin");
    let key: String = tx
        .query_one(
            "SELECT warden.create_api_key($1, $2, $3::text::text[])",
            &[&name, &level, &scopes],
        )
        .unwrap()
        .get(0);
    tx.commit().unwrap();
    key
}

fn last_used(c: &mut Client, name: &str) -> Option<String> {
    c.query_one(
        "SELECT last_used_at::text FROM warden.api_key_records WHERE name = $1",
        &[&name],
    )
    .unwrap()
    .get(0)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_key_authenticates_through_pgbouncer_without_a_write_and_its_use_is_written_once_a_minute() {
    let key = create_key("it-reader", "read", "{docs:*:read}");
    let mut admin = admin();
    assert_eq!(last_used(&mut admin, "it-reader"), None);
    let mut app = app_via_pgbouncer();
    for _ in 0..20 {
        let mut tx = app.transaction().unwrap();
        tx.execute("SELECT warden.authenticate_key($1)", &[&key])
            .unwrap();
        let rows: i64 = tx
            .query_one("SELECT count(*) FROM key_docs", &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 5, "the key's tenant sees its rows");
        // authentication and the read assigned no transaction id: nothing was written
        let xid: Option<String> = tx
            .query_one("SELECT txid_current_if_assigned()::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(xid, None, "authenticate_key turned a read into a write");
        assert_eq!(
            sqlstate(tx.execute(
                "INSERT INTO key_docs VALUES (99, $1::text::uuid, 'x')",
                &[&TENANT_E]
            )),
            "42501",
            "docs:*:read does not write"
        );
        tx.rollback().unwrap();
    }
    wait_for("last_used_at written by the worker", || {
        last_used(&mut admin, "it-reader").is_some()
    });
    let first = last_used(&mut admin, "it-reader");
    for _ in 0..20 {
        let mut tx = app.transaction().unwrap();
        tx.execute("SELECT warden.authenticate_key($1)", &[&key])
            .unwrap();
        tx.commit().unwrap();
    }
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        last_used(&mut admin, "it-reader"),
        first,
        "a second write within the minute"
    );
    let stale: i64 = admin
        .query_one(
            "SELECT count(*) FROM warden.stale_api_keys WHERE name = 'it-reader'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stale, 0, "a key in use is not stale");
}

#[test]
fn a_revoked_key_is_refused_in_every_session_at_its_next_transaction_and_on_record() {
    let key = create_key("it-revoked", "write", "{docs:document:write}");
    let mut app = app();
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT warden.authenticate_key($1)", &[&key])
        .unwrap();
    tx.commit().unwrap();

    let mut m = connect("it_middleware");
    let mut mtx = m.transaction().unwrap();
    in_tenant_e(&mut mtx, "admin");
    mtx.execute(
        "SELECT warden.revoke_api_key(id, 'leaked') FROM warden.api_keys WHERE name = 'it-revoked'",
        &[],
    )
    .unwrap();
    mtx.commit().unwrap();

    let mut tx = app.transaction().unwrap();
    assert_eq!(
        sqlstate(tx.execute("SELECT warden.authenticate_key($1)", &[&key])),
        "28000"
    );
    let _ = tx.rollback();
    let mut admin = admin();
    let recorded: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT changes FROM warden.audit_events
                                   UNION ALL SELECT changes::jsonb FROM warden.audit_pending) e
              WHERE e.changes ->> 'reason' LIKE '%was revoked' AND e.changes ->> 'key_matched' = 'true'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(recorded >= 1, "the refused key is not on record");
}

#[test]
fn a_destroyed_key_is_refused_in_a_session_that_used_it_a_moment_before() {
    let mut m = connect("it_middleware");
    let ctx = |c: &mut postgres::Transaction<'_>| in_tenant_e(c, "admin");
    let mut tx = m.transaction().unwrap();
    ctx(&mut tx);
    let sealed: Vec<u8> = tx
        .query_one(
            "SELECT warden.encrypt('shred me'::text, warden.subject_key('00000000-0000-0000-0000-0000000000e1'))",
            &[],
        )
        .unwrap()
        .get(0);
    tx.commit().unwrap();

    // another session decrypts it (and caches the key for its transaction)
    let mut other = connect("it_middleware");
    let mut otx = other.transaction().unwrap();
    ctx(&mut otx);
    let plain: String = otx
        .query_one("SELECT warden.decrypt_text($1)", &[&sealed])
        .unwrap()
        .get(0);
    assert_eq!(plain, "shred me");
    otx.commit().unwrap();

    let mut tx = m.transaction().unwrap();
    ctx(&mut tx);
    let report: String = tx
        .query_one(
            "SELECT (warden.erase_subject('00000000-0000-0000-0000-0000000000e1', 'it') -> 'subject_key')::text",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(report.contains("\"destroyed_versions\": 1"), "{report}");
    tx.commit().unwrap();

    let mut otx = other.transaction().unwrap();
    ctx(&mut otx);
    assert_eq!(
        sqlstate(otx.query_one("SELECT warden.decrypt_text($1)", &[&sealed])),
        "55000"
    );
    let _ = otx.rollback();
}

#[test]
fn a_phi_read_that_fails_after_it_started_is_on_record_after_the_rollback() {
    let mut m = connect("it_middleware");
    let before: i64 = admin()
        .query_one(
            "SELECT count(*) FROM (SELECT action, status FROM warden.audit_events
                                   UNION ALL SELECT action, status FROM warden.audit_pending) e
              WHERE e.action = 'phi_read' AND e.status = 'error'",
            &[],
        )
        .unwrap()
        .get(0);
    let mut tx = m.transaction().unwrap();
    in_tenant_e(&mut tx, "read");
    // rows 1..9 reach the client before row 10 divides by zero
    let r = tx.query("SELECT dx, 1 / (10 - id) FROM phi_people ORDER BY id", &[]);
    assert_eq!(sqlstate(r), "22012");
    let _ = tx.rollback();
    let mut admin = admin();
    wait_for("the failed PHI read on record", || {
        admin
            .query_one(
                "SELECT count(*) FROM (SELECT action, status FROM warden.audit_events
                                       UNION ALL SELECT action, status FROM warden.audit_pending) e
                  WHERE e.action = 'phi_read' AND e.status = 'error'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            > before
    });
    // and a successful one says how many rows it returned
    let mut tx = m.transaction().unwrap();
    in_tenant_e(&mut tx, "read");
    let n = tx
        .query("SELECT dx FROM phi_people WHERE id <= 7", &[])
        .unwrap()
        .len();
    assert_eq!(n, 7);
    tx.commit().unwrap();
    wait_for("the PHI read with its rows", || {
        admin
            .query_one(
                "SELECT count(*) FROM (SELECT action, changes FROM warden.audit_events
                                       UNION ALL SELECT action, changes::jsonb FROM warden.audit_pending) e
                  WHERE e.action = 'phi_read' AND e.changes ->> 'rows' = '7'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            >= 1
    });
}
