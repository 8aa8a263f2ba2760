//! Legal holds and data-subject rights over real connections: a hold placed in one session guards
//! every other at its next statement, refusals recorded although rolled back, a context that dies
//! mid-transaction refused rather than trusted, audit retention that keeps held tenants' events,
//! and deleted accounts whose earlier tokens stop working in every session.

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use warden_tests::*;

const TENANT_C: &str = "cccccccc-0000-0000-0000-00000000000c";
const TENANT_D: &str = "dddddddd-0000-0000-0000-00000000000d";

fn token_for(tenant: &str, sub: &str, level: &str, exp: i64, iat: Option<i64>) -> String {
    sign(
        &Claims {
            tenant_id: tenant,
            sub,
            role: level,
            exp,
            nbf: None,
            iat,
        },
        &secret(),
    )
}

fn wait_sealed(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .query_one("SELECT count(*) FROM warden.audit_pending", &[])
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "events still pending after 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `sql` in a transaction of `c` authenticated with `token`; the SQLSTATE, or "ok".
fn in_context(c: &mut Client, token: &str, sql: &str) -> String {
    let mut tx = c.transaction().unwrap();
    tx.execute("SELECT warden.authenticate($1)", &[&token])
        .unwrap();
    let r = tx.batch_execute(sql);
    let out = match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| e.to_string()),
    };
    let _ = tx.rollback();
    out
}

#[test]
fn a_hold_placed_elsewhere_guards_this_session_and_every_refusal_is_on_record() {
    let mut app = warden_tests::app();
    let mut admin = warden_tests::admin();
    let delete_c = token(TENANT_C, "delete");
    // the application's backend has read the (empty, for this table) holds before
    assert_eq!(
        in_context(&mut app, &delete_c, "DELETE FROM hold_docs WHERE id = 1"),
        "ok"
    );

    let case = format!("IT-{}", uuid::Uuid::new_v4());
    let hold: String = admin
        .query_one(
            "SELECT warden.place_hold($1, 'integration', $2::text::uuid, 'hold_docs')::text",
            &[&case, &TENANT_C],
        )
        .unwrap()
        .get(0);

    // the same backend, next transaction: refused
    assert_eq!(
        in_context(&mut app, &delete_c, "DELETE FROM hold_docs WHERE id = 2"),
        "42501"
    );
    assert_eq!(
        in_context(
            &mut app,
            &delete_c,
            "WITH d AS (DELETE FROM hold_docs RETURNING 1) SELECT count(*) FROM d"
        ),
        "42501"
    );
    // another tenant's rows in the same table are not held
    assert_eq!(
        in_context(
            &mut app,
            &token(TENANT_D, "delete"),
            "DELETE FROM hold_docs WHERE id = 11"
        ),
        "ok"
    );
    // a context that expires during the transaction is not trusted: refused, not 0 rows
    let short = token_for(TENANT_C, ACTOR, "delete", now() + 2, Some(now()));
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT warden.authenticate($1)", &[&short])
        .unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let r = tx.execute("DELETE FROM hold_docs WHERE id = 3", &[]);
    assert_eq!(sqlstate(r), "42501");
    drop(tx);

    // every refusal above is an event, although each transaction was rolled back
    wait_sealed(&mut admin);
    let ops: Vec<(String, Option<String>)> = admin
        .query(
            "SELECT changes->>'operation', changes->>'reason' FROM warden.audit_events
              WHERE action = 'hold_violation' AND changes->>'case_ref' = $1 ORDER BY id",
            &[&case],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(
        ops[..2]
            .iter()
            .all(|(op, reason)| op == "DELETE" && reason.is_none()),
        "{ops:?}"
    );
    assert!(
        ops[2]
            .1
            .as_deref()
            .unwrap_or("")
            .contains("no verified warden context"),
        "{ops:?}"
    );
    let tenant: String = admin
        .query_one(
            "SELECT tenant::text FROM warden.audit_events WHERE action = 'hold_violation' AND changes->>'case_ref' = $1 LIMIT 1",
            &[&case],
        )
        .unwrap()
        .get(0);
    assert_eq!(tenant, TENANT_C);

    // released in another session: this one may delete again
    admin
        .execute(
            "SELECT warden.release_hold($1::text::uuid, 'integration done')",
            &[&hold],
        )
        .unwrap();
    assert_eq!(
        in_context(&mut app, &delete_c, "DELETE FROM hold_docs WHERE id = 2"),
        "ok"
    );
}

#[test]
fn purging_keeps_the_events_of_held_tenants_under_a_digest_that_catches_tampering() {
    // its own database: purging the fixture's trail would pull events from under the other tests
    let mut root = admin();
    let db = format!("it_purge_{}", std::process::id());
    root.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .unwrap();
    root.batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    let dsn = format!(
        "host={} port={} dbname={db} user=postgres",
        std::env::var("WARDEN_TEST_HOST").unwrap(),
        std::env::var("WARDEN_TEST_PORT").unwrap()
    );
    {
        let mut c = Client::connect(&dsn, NoTls).unwrap();
        c.batch_execute(&format!(
            "CREATE EXTENSION warden;
             CREATE TABLE t (id int PRIMARY KEY, tenant_id uuid NOT NULL);
             SELECT warden.protect_table('t');
             SELECT warden.enable_audit('t');
             SELECT warden.set_context('{TENANT_C}', '{ACTOR}', 'admin');
             INSERT INTO t SELECT g, '{TENANT_C}' FROM generate_series(1, 5) g;
             SELECT warden.set_context('{TENANT_D}', '{ACTOR}', 'admin');
             INSERT INTO t SELECT g, '{TENANT_D}' FROM generate_series(6, 12) g;"
        ))
        .unwrap();
        c.execute(
            "SELECT warden.place_hold('IT-PURGE', 'keep the trail', $1::text::uuid)",
            &[&TENANT_C],
        )
        .unwrap();
        c.batch_execute("SELECT warden.seal_audit()").unwrap();
        let count = |c: &mut Client, t: &str| -> i64 {
            c.query_one(
                "SELECT count(*) FROM warden.audit_events WHERE tenant = $1::text",
                &[&t],
            )
            .unwrap()
            .get(0)
        };
        let (c_before, d_before) = (count(&mut c, TENANT_C), count(&mut c, TENANT_D));
        assert!(c_before >= 6 && d_before >= 7, "{c_before} {d_before}");

        c.batch_execute("SET warden.audit_retention = 0").unwrap();
        let purged: i64 = c
            .query_one("SELECT warden.purge_audit()", &[])
            .unwrap()
            .get(0);
        assert!(purged >= d_before, "purged {purged}");
        assert_eq!(
            count(&mut c, TENANT_C),
            c_before,
            "the held tenant's events stay"
        );
        assert_eq!(count(&mut c, TENANT_D), 0, "the others' go");
        let retained: i64 = c
            .query_one(
                "SELECT retained FROM warden.audit_checkpoints ORDER BY id DESC LIMIT 1",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(retained, c_before);
        let intact: bool = c
            .query_one("SELECT intact FROM warden.verify_audit()", &[])
            .unwrap()
            .get(0);
        assert!(
            intact,
            "the trail verifies after a purge that kept held events"
        );

        // a superuser edits a kept event behind the triggers' back (writing the catalogs: ALTER TABLE
        // ... DISABLE TRIGGER on warden's tables is refused): verification says so
        c.batch_execute(
            "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'warden.audit_events'::regclass AND NOT tgisinternal;
             UPDATE pg_catalog.pg_class SET relhastriggers = relhastriggers WHERE oid = 'warden.audit_events'::regclass;
             UPDATE warden.audit_events SET action = 'nothing' WHERE id = (SELECT min(id) FROM warden.audit_events);
             UPDATE pg_catalog.pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'warden.audit_events'::regclass AND NOT tgisinternal;
             UPDATE pg_catalog.pg_class SET relhastriggers = relhastriggers WHERE oid = 'warden.audit_events'::regclass;",
        )
        .unwrap();
        let row = c
            .query_one("SELECT intact, reason FROM warden.verify_audit()", &[])
            .unwrap();
        assert!(!row.get::<_, bool>(0));
        assert!(
            row.get::<_, String>(1).contains("kept by a legal hold"),
            "{:?}",
            row.get::<_, String>(1)
        );
        // and one deleted outright
        c.batch_execute(
            "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'warden.audit_events'::regclass AND NOT tgisinternal;
             UPDATE pg_catalog.pg_class SET relhastriggers = relhastriggers WHERE oid = 'warden.audit_events'::regclass;
             DELETE FROM warden.audit_events WHERE id = (SELECT max(id) FROM warden.audit_events
                                                          WHERE id <= (SELECT max(id) FROM warden.audit_checkpoints));
             UPDATE warden.audit_events SET action = 'insert' WHERE action = 'nothing';
             UPDATE pg_catalog.pg_trigger SET tgenabled = 'A' WHERE tgrelid = 'warden.audit_events'::regclass AND NOT tgisinternal;
             UPDATE pg_catalog.pg_class SET relhastriggers = relhastriggers WHERE oid = 'warden.audit_events'::regclass;",
        )
        .unwrap();
        let row = c
            .query_one("SELECT intact, reason FROM warden.verify_audit()", &[])
            .unwrap();
        assert!(!row.get::<_, bool>(0));
        // a database a hold covers cannot be dropped: the drop below is refused until the release
        let refused = root.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"));
        assert_eq!(
            refused.unwrap_err().code(),
            Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
        );
        c.batch_execute(
            "SELECT warden.release_hold(id, 'test done') FROM warden.legal_holds WHERE active",
        )
        .unwrap();
    }
    // the sealing worker may hold the database open for a moment after the last event
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = root.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")) {
        assert!(Instant::now() < deadline, "{e}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_deleted_accounts_earlier_tokens_are_refused_in_every_session() {
    let actor = uuid::Uuid::new_v4().to_string();
    let other_admin = uuid::Uuid::new_v4().to_string();
    let mut admin = warden_tests::admin();
    admin
        .execute(
            "INSERT INTO hold_members VALUES ($1::text::uuid, $2::text::uuid, 'admin'), ($1::text::uuid, $3::text::uuid, 'admin')",
            &[&TENANT_D, &actor, &other_admin],
        )
        .unwrap();
    admin
        .execute(
            "INSERT INTO hold_people VALUES ($1::text::uuid, $2::text::uuid, 'gone@example.com', 'Gone')",
            &[&actor, &TENANT_D],
        )
        .unwrap();
    let mut app = warden_tests::app();
    let mut other = warden_tests::app();
    let old = token_for(TENANT_D, &actor, "read", now() + 300, Some(now() - 600));
    let no_iat = token_for(TENANT_D, &actor, "read", now() + 300, None);
    let fresh = token_for(TENANT_D, &actor, "read", now() + 300, Some(now()));
    // both sessions have verified the old token before
    for c in [&mut app, &mut other] {
        assert_eq!(in_context(c, &old, "SELECT 1"), "ok");
    }
    // self-service deletion needs a fresh token
    assert_eq!(
        in_context(
            &mut app,
            &old,
            &format!("SELECT warden.delete_account('{actor}', 'leaving')")
        ),
        "42501"
    );
    assert_eq!(
        in_context(
            &mut app,
            &no_iat,
            &format!("SELECT warden.delete_account('{actor}', 'leaving')")
        ),
        "42501"
    );
    let mut tx = app.transaction().unwrap();
    tx.execute("SELECT warden.authenticate($1)", &[&fresh])
        .unwrap();
    let report: String = tx
        .query_one(
            "SELECT warden.delete_account($1::text::uuid, 'leaving')::text",
            &[&actor],
        )
        .unwrap()
        .get(0);
    tx.commit().unwrap();
    assert!(report.contains("\"rows\": 1"), "{report}");

    // every token issued before, in every session, through every path: refused
    for c in [&mut app, &mut other] {
        for t in [&old, &no_iat, &fresh] {
            let r = c.execute("SELECT warden.authenticate($1)", &[t]);
            assert_eq!(sqlstate(r), "28000");
            let mut tx = c.transaction().unwrap();
            let r = tx.batch_execute(&format!("SET LOCAL warden.context_token = '{t}'"));
            assert!(r.is_err());
            drop(tx);
        }
    }
    // the personal data is gone, not the row
    let row = admin
        .query_one(
            "SELECT email, name FROM hold_people WHERE id = $1::text::uuid",
            &[&actor],
        )
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("[redacted]")
    );
    // a token issued after the deletion (a new account with the same id) is a new session
    std::thread::sleep(Duration::from_millis(1100));
    let later = token_for(TENANT_D, &actor, "read", now() + 300, Some(now() + 1));
    assert_eq!(in_context(&mut other, &later, "SELECT 1"), "ok");
    // the refusals are on record
    wait_sealed(&mut admin);
    let refused: i64 = admin
        .query_one(
            "SELECT count(*) FROM warden.audit_events WHERE action = 'authenticate' AND status = 'denied'
                AND actor = $1::text AND changes->>'reason' LIKE '%deleted%'",
            &[&actor],
        )
        .unwrap()
        .get(0);
    assert!(refused >= 6, "{refused}");
}
