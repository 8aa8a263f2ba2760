//! The audit trail over real connections: what the application's writes and failures leave on the
//! record, twelve concurrent writers, and tampering by a superuser caught by verification.

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use warden_tests::*;

/// Waits (at most 10 s) until the sealing worker has sealed everything committed so far.
fn wait_sealed(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending: i64 = c
            .query_one("SELECT count(*) FROM warden.audit_pending", &[])
            .unwrap()
            .get(0);
        if pending == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} events still pending after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A sealed event: action, status, tenant, actor, changes.
type Ev = (String, String, Option<String>, Option<String>, String);

/// The sealed events whose resource_id is `rid`.
fn events_for(c: &mut Client, rid: &str) -> Vec<Ev> {
    c.query(
        "SELECT action, status, tenant::text, actor::text, coalesce(changes::text, '') \
           FROM warden.audit_events WHERE resource_id = $1 ORDER BY id",
        &[&rid],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

fn unique_id() -> i64 {
    // ids that no other test (or earlier run against the same database) uses
    (now() % 1_000_000) * 1000 + i64::from(uuid::Uuid::new_v4().as_u128() as u16 % 1000)
}

#[test]
fn committed_writes_are_sealed_with_who_and_where_and_rolled_back_ones_leave_nothing() {
    let id = unique_id();
    let rid = id.to_string();
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "SELECT warden.authenticate($1)",
        &[&token(TENANT_A, "write")],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO audit_docs VALUES ($1, $2::text::uuid, 'kept', 'hunter2')",
        &[&id, &TENANT_A],
    )
    .unwrap();
    tx.commit().unwrap();
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "SELECT warden.authenticate($1)",
        &[&token(TENANT_A, "write")],
    )
    .unwrap();
    tx.execute(
        "UPDATE audit_docs SET body = 'rolled back' WHERE id = $1",
        &[&id],
    )
    .unwrap();
    tx.rollback().unwrap();

    let mut a = admin();
    wait_sealed(&mut a);
    let ev = events_for(&mut a, &rid);
    assert_eq!(ev.len(), 1, "one insert, no update: {ev:?}");
    let (action, status, tenant, actor, changes) = &ev[0];
    assert_eq!((action.as_str(), status.as_str()), ("insert", "success"));
    assert_eq!(tenant.as_deref(), Some(TENANT_A));
    assert_eq!(actor.as_deref(), Some(ACTOR));
    assert!(changes.contains(r#""secret": "<redacted>""#), "{changes}");
    assert!(!changes.contains("hunter2"), "{changes}");
    let ctx: String = a
        .query_one(
            "SELECT (context->>'database_role') || ' ' || (context->>'application_name') \
               || ' ' || (context->>'client_addr' IS NOT NULL) \
               FROM warden.audit_events WHERE resource_id = $1",
            &[&rid],
        )
        .unwrap()
        .get(0);
    assert_eq!(ctx, "it_app warden-tests true");
}

/// The worker scans only the pending blocks that committed writers named since its last pass (and
/// the whole table every 10 s): a transaction open across several passes names its blocks when it
/// commits, so its event is sealed by the next pass, not by the next full scan.
#[test]
fn an_event_committed_after_passes_that_could_not_see_it_is_sealed_at_the_next_pass() {
    let id = unique_id();
    let rid = id.to_string();
    // other writers keep the worker passing (and taking their hints) while the transaction is open
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = app();
            let mut n = 0i64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut tx = c.transaction().unwrap();
                tx.execute(
                    "SELECT warden.authenticate($1)",
                    &[&token(TENANT_B, "write")],
                )
                .unwrap();
                tx.execute(
                    "INSERT INTO audit_docs VALUES ($1, $2::text::uuid, 'busy', 'x')",
                    &[&(id + 1_000_000_000 + n), &TENANT_B],
                )
                .unwrap();
                tx.commit().unwrap();
                n += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "SELECT warden.authenticate($1)",
        &[&token(TENANT_A, "write")],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO audit_docs VALUES ($1, $2::text::uuid, 'open across passes', 'x')",
        &[&id, &TENANT_A],
    )
    .unwrap();
    // several passes (warden.audit_seal_interval is 200 ms) run while this is uncommitted
    std::thread::sleep(Duration::from_millis(1200));
    tx.commit().unwrap();
    let committed = Instant::now();
    let mut a = admin();
    let sealed = loop {
        if events_for(&mut a, &rid).len() == 1 {
            break Some(committed.elapsed());
        }
        if committed.elapsed() > Duration::from_millis(1500) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    busy.join().unwrap();
    assert!(
        sealed.is_some(),
        "the event was not sealed within 1.5 s of its commit (left for the full scan)"
    );
}

#[test]
fn a_denied_authentication_survives_the_rollback() {
    let subject = uuid::Uuid::new_v4().to_string();
    let forged = with_payload(
        &token(TENANT_A, "read"),
        &format!(
            r#"{{"tenant_id":"{TENANT_B}","sub":"{subject}","role":"admin","exp":{}}}"#,
            now() + 300
        ),
    );
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    assert_eq!(
        sqlstate(tx.execute("SELECT warden.authenticate($1)", &[&forged])),
        "28000"
    );
    tx.rollback().unwrap();

    let mut a = admin();
    wait_sealed(&mut a);
    let ev = events_for(&mut a, &subject);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let (action, status, tenant, actor, changes) = &ev[0];
    assert_eq!(
        (action.as_str(), status.as_str()),
        ("authenticate", "denied")
    );
    // the claims of a token whose signature failed are not trusted with the tenant column...
    assert_eq!((tenant.as_deref(), actor.as_deref()), (None, None));
    // ...but kept as what it claimed, with the reason; never the token or its signature
    assert!(
        changes.contains(&format!(r#""claimed_tenant": "{TENANT_B}""#)),
        "{changes}"
    );
    assert!(changes.contains("signature is invalid"), "{changes}");
    let signature = forged.rsplit('.').next().unwrap();
    assert!(!changes.contains(signature), "{changes}");
    let whole: String = a
        .query_one(
            "SELECT e::text FROM warden.audit_events e WHERE resource_id = $1",
            &[&subject],
        )
        .unwrap()
        .get(0);
    assert!(!whole.contains(signature) && !whole.contains(&forged[..20]));
}

#[test]
fn a_forged_token_given_to_set_local_is_a_denied_event_too() {
    let subject = uuid::Uuid::new_v4().to_string();
    let forged = with_payload(
        &token(TENANT_A, "read"),
        &format!(
            r#"{{"tenant_id":"{TENANT_B}","sub":"{subject}","role":"admin","exp":{}}}"#,
            now() + 300
        ),
    );
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    assert_eq!(
        sqlstate(tx.batch_execute(&format!("SET LOCAL warden.context_token = '{forged}'"))),
        "28000"
    );
    drop(tx);
    let mut a = admin();
    wait_sealed(&mut a);
    let via: Vec<(String, Option<String>)> = a
        .query(
            "SELECT status, context->>'via' FROM warden.audit_events WHERE resource_id = $1",
            &[&subject],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        via,
        vec![(
            "denied".to_string(),
            Some("SET warden.context_token".to_string())
        )]
    );
}

#[test]
fn an_expired_token_is_recorded_against_its_genuine_tenant() {
    let subject = uuid::Uuid::new_v4().to_string();
    let expired = sign(
        &Claims {
            tenant_id: TENANT_A,
            sub: &subject,
            role: "read",
            exp: now() - 600,
            nbf: None,
            iat: None,
        },
        &secret(),
    );
    let mut c = app();
    let mut tx = c.transaction().unwrap();
    assert_eq!(
        sqlstate(tx.execute("SELECT warden.authenticate($1)", &[&expired])),
        "28000"
    );
    drop(tx);
    let mut a = admin();
    wait_sealed(&mut a);
    let ev = events_for(&mut a, &subject);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].2.as_deref(), Some(TENANT_A));
    assert_eq!(ev[0].3.as_deref(), Some(subject.as_str()));
}

#[test]
fn a_confirmation_not_awaited_is_counted() {
    let mut a = admin();
    let before: i64 = a
        .query_one("SELECT unconfirmed FROM warden.audit_queue_status()", &[])
        .unwrap()
        .get(0);
    a.batch_execute("SET warden.audit_autonomous_wait = 0")
        .unwrap();
    let mut tx = a.transaction().unwrap();
    assert_eq!(
        sqlstate(tx.execute("SELECT warden.authenticate('not.a.token')", &[])),
        "28000"
    );
    drop(tx);
    let after: i64 = a
        .query_one("SELECT unconfirmed FROM warden.audit_queue_status()", &[])
        .unwrap()
        .get(0);
    assert!(after > before, "unconfirmed {before} -> {after}");
}

#[test]
fn twelve_concurrent_writers_make_one_chain_without_fork_or_gap() {
    const WRITERS: usize = 12;
    const TXNS: i64 = 40;
    let base = unique_id() * 100;
    let tenants = [
        TENANT_A, TENANT_A, TENANT_A, TENANT_A, TENANT_A, TENANT_A, TENANT_B, TENANT_B, TENANT_B,
        TENANT_B, TENANT_B, TENANT_B,
    ];
    let mut a = admin();
    let head_before: i64 = a
        .query_one("SELECT id FROM warden.audit_digest()", &[])
        .unwrap()
        .get(0);
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let tenant = tenants[w];
            std::thread::spawn(move || {
                let mut c = app();
                for t in 0..TXNS {
                    let mut tx = c.transaction().unwrap();
                    tx.execute("SELECT warden.authenticate($1)", &[&token(tenant, "write")])
                        .unwrap();
                    let id = base + (w as i64) * 1000 + t;
                    tx.execute(
                        "INSERT INTO audit_docs VALUES ($1, $2::text::uuid, 'concurrent', NULL)",
                        &[&id, &tenant],
                    )
                    .unwrap();
                    tx.commit().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    wait_sealed(&mut a);
    // every write has exactly one event
    let n: i64 = a
        .query_one(
            "SELECT count(*) FROM warden.audit_events \
              WHERE resource_type = 'public.audit_docs' AND action = 'insert' \
                AND resource_id::bigint BETWEEN $1 AND $2",
            &[&base, &(base + 12_000)],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, WRITERS as i64 * TXNS);
    // one chain: consecutive ids, each linked to the one before, from the head before the writers
    let row = a
        .query_one(
            "SELECT intact, first_bad_id, reason FROM warden.verify_audit($1, NULL)",
            &[&(head_before + 1)],
        )
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "{:?}",
        row.get::<_, Option<String>>(2)
    );
    let (ids, distinct, forks): (i64, i64, i64) = {
        let r = a
            .query_one(
                "SELECT count(*), count(DISTINCT id), \
                        count(*) - count(DISTINCT prev_hash) \
                   FROM warden.audit_events WHERE id > $1",
                &[&head_before],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(ids, distinct);
    assert_eq!(forks, 0, "two events link to the same predecessor");
}

/// A database of its own for the tampering tests (they damage the chain on purpose).
fn scratch_db(name: &str) -> Client {
    let mut a = admin();
    a.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    a.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let dsn = format!(
        "host={} port={} dbname={name} user=postgres",
        std::env::var("WARDEN_TEST_HOST").unwrap(),
        std::env::var("WARDEN_TEST_PORT").unwrap()
    );
    let mut c = Client::connect(&dsn, NoTls).unwrap();
    c.batch_execute(
        "CREATE EXTENSION warden;
         CREATE TABLE t (id int PRIMARY KEY, v text);
         SELECT warden.enable_audit('t');
         INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g;
         SELECT warden.log_event('note', 'test', 'x', '{\"price\": 1.50, \"list\": [3, 1e2, \"\\u00e9\"]}');
         SELECT warden.seal_audit();",
    )
    .unwrap();
    c
}

fn verify(c: &mut Client) -> (bool, Option<i64>, Option<String>) {
    let r = c
        .query_one(
            "SELECT intact, first_bad_id, reason FROM warden.verify_audit()",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn digest(c: &mut Client) -> (i64, Vec<u8>) {
    let r = c
        .query_one("SELECT id, hash FROM warden.audit_digest()", &[])
        .unwrap();
    (r.get(0), r.get(1))
}

fn digest_holds(c: &mut Client, d: &(i64, Vec<u8>)) -> (bool, Option<String>) {
    let r = c
        .query_one(
            "SELECT holds, reason FROM warden.verify_audit_digest($1, $2)",
            &[&d.0, &d.1],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

/// The tamperer is a superuser who first switches off everything that guards the table: `ALTER
/// TABLE ... DISABLE TRIGGER` on warden's tables is refused to everyone, so they write the system
/// catalogs directly (and touch the table's pg_class row, which makes backends reload it).
const DISARM: &str = "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'warden.audit_events'::regclass;
                      UPDATE pg_catalog.pg_class SET relhastriggers = relhastriggers WHERE oid = 'warden.audit_events'::regclass;
                      ALTER EVENT TRIGGER warden_ddl_command_end DISABLE;
                      SET session_replication_role = replica;";

fn export(c: &mut Client) -> String {
    c.query("SELECT e::text FROM warden.audit_export(0, 1000000) e", &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0) + "\n")
        .collect()
}

fn python(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/verify_audit_export.py"
    );
    let mut cmd = std::process::Command::new("python3");
    if stdin.is_some() {
        cmd.args(["-c", args[0]]).env("VERIFIER", script);
    } else {
        cmd.arg(script).args(args);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn an_export_verifies_outside_the_database_and_reaches_the_digest() {
    let mut c = scratch_db("warden_it_export");
    let (id, hash) = digest(&mut c);
    let dir = std::env::temp_dir().join(format!("warden-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("trail.jsonl");
    std::fs::write(&file, export(&mut c)).unwrap();
    let anchor = format!("{id}:{}", hex(&hash));
    let (ok, out) = python(&[file.to_str().unwrap(), "--digest", &anchor], None);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("head={anchor}")), "{out}");
    // a value changed in the copy is caught
    let changed = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("\"v7\"", "\"v8\"", 1);
    std::fs::write(&file, changed).unwrap();
    let (ok, out) = python(&[file.to_str().unwrap()], None);
    assert!(
        !ok && out.contains("hash does not match the event's content"),
        "{out}"
    );
    drop(c);
    admin()
        .batch_execute("DROP DATABASE warden_it_export WITH (FORCE)")
        .unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn tampering_by_a_superuser_is_caught() {
    let mut c = scratch_db("warden_it_tamper");
    let anchored = digest(&mut c);
    assert_eq!(verify(&mut c), (true, None, None));
    let n = anchored.0;
    c.batch_execute(DISARM).unwrap();

    // a changed value: verification finds the event
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "UPDATE warden.audit_events SET changes = '{}' WHERE id = 5",
        &[],
    )
    .unwrap();
    let r = tx
        .query_one(
            "SELECT intact, first_bad_id, reason FROM warden.verify_audit()",
            &[],
        )
        .unwrap();
    assert_eq!(
        (r.get::<_, bool>(0), r.get::<_, Option<i64>>(1)),
        (false, Some(5))
    );
    assert_eq!(
        r.get::<_, String>(2),
        "event 5: hash does not match the event's content"
    );
    tx.rollback().unwrap();

    // a deleted event in the middle
    let mut tx = c.transaction().unwrap();
    tx.execute("DELETE FROM warden.audit_events WHERE id = 7", &[])
        .unwrap();
    let r = tx
        .query_one(
            "SELECT intact, first_bad_id, reason FROM warden.verify_audit()",
            &[],
        )
        .unwrap();
    assert_eq!(
        (r.get::<_, bool>(0), r.get::<_, Option<i64>>(1)),
        (false, Some(7))
    );
    assert_eq!(r.get::<_, String>(2), "event 7 is missing");
    tx.rollback().unwrap();

    // a reordered pair
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(
        "UPDATE warden.audit_events SET id = -id WHERE id IN (9, 10);
         UPDATE warden.audit_events SET id = CASE id WHEN -9 THEN 10 ELSE 9 END WHERE id < 0;",
    )
    .unwrap();
    let r = tx
        .query_one(
            "SELECT intact, first_bad_id FROM warden.verify_audit()",
            &[],
        )
        .unwrap();
    assert_eq!(
        (r.get::<_, bool>(0), r.get::<_, Option<i64>>(1)),
        (false, Some(9))
    );
    tx.rollback().unwrap();

    // a truncated tail: the chain that is left is intact; only the digest shows the loss
    let mut tx = c.transaction().unwrap();
    tx.execute("DELETE FROM warden.audit_events WHERE id > $1", &[&(n - 3)])
        .unwrap();
    let r = tx
        .query_one("SELECT intact FROM warden.verify_audit()", &[])
        .unwrap();
    assert!(
        r.get::<_, bool>(0),
        "the shortened chain verifies on its own"
    );
    let r = tx
        .query_one(
            "SELECT holds, reason FROM warden.verify_audit_digest($1, $2)",
            &[&anchored.0, &anchored.1],
        )
        .unwrap();
    assert!(!r.get::<_, bool>(0));
    assert_eq!(
        r.get::<_, String>(1),
        format!("event {n} is missing: the chain ends at {}", n - 3)
    );
    tx.rollback().unwrap();

    // a forged event inserted in the middle, every later hash recomputed with the documented
    // serialization (the tamperer knows it): verification alone is satisfied, the digest is not
    let forged = python(
        &[r#"
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("v", os.environ["VERIFIER"])
v = importlib.util.module_from_spec(spec); spec.loader.exec_module(v)
events = [json.loads(l, parse_float=v.Number, parse_int=v.Number) for l in sys.stdin if l.strip()]
forged = dict(events[3], action="forged", resource_id="nobody saw this")
events.insert(4, forged)
prev = bytes(32)
for i, e in enumerate(events, 1):
    e["id"] = v.Number(str(i)); e["prev_hash"] = prev.hex()
    h = v.event_hash(prev, e); e["hash"] = h.hex(); prev = h
for e in events:
    out = []; v.canonical_json(e, out); print("".join(out))
"#],
        Some(&export(&mut c)),
    );
    assert!(forged.0, "{}", forged.1);
    let mut tx = c.transaction().unwrap();
    tx.execute("DELETE FROM warden.audit_events", &[]).unwrap();
    for line in forged.1.lines() {
        tx.execute(
            "INSERT INTO warden.audit_events \
             SELECT (j->>'id')::bigint, (j->>'occurred_at')::timestamptz, j->>'tenant', \
                    j->>'actor', j->>'action', j->>'resource_type', j->>'resource_id', \
                    j->'changes', j->>'status', j->'context', \
                    decode(j->>'prev_hash', 'hex'), decode(j->>'hash', 'hex'), \
                    (j->>'serialization')::int2 \
               FROM (SELECT $1::text::jsonb AS j) s",
            &[&line],
        )
        .unwrap();
    }
    let r = tx
        .query_one("SELECT intact, checked FROM warden.verify_audit()", &[])
        .unwrap();
    assert!(
        r.get::<_, bool>(0),
        "a consistently rewritten chain verifies on its own"
    );
    assert_eq!(r.get::<_, i64>(1), n + 1);
    let r = tx
        .query_one(
            "SELECT holds, reason FROM warden.verify_audit_digest($1, $2)",
            &[&anchored.0, &anchored.1],
        )
        .unwrap();
    assert!(!r.get::<_, bool>(0));
    assert_eq!(
        r.get::<_, String>(1),
        format!("event {n} has another hash than the digest")
    );
    tx.rollback().unwrap();

    assert_eq!(digest_holds(&mut c, &anchored), (true, None));
    drop(c);
    admin()
        .batch_execute("DROP DATABASE warden_it_tamper WITH (FORCE)")
        .unwrap();
}
