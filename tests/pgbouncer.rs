//! PgBouncer in transaction pooling mode, 2 server connections: two clients alternate tenants for
//! 10,000 transactions (plus context-free transactions in between), setting the context alternately
//! with `warden.authenticate()` and with `SET LOCAL warden.context_token`, and now and then trying a
//! session-level `SET` (refused). A context that outlived its transaction would show up as rows of
//! the wrong tenant, or as rows where none may be seen.

use std::thread;

use postgres::{Client, SimpleQueryMessage};
use warden_tests::*;

const TRANSACTIONS_PER_CLIENT: usize = 5_000;

/// First column of the first row of a simple query, as i64.
fn scalar(c: &mut Client, sql: &str) -> i64 {
    c.simple_query(sql)
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse::<i64>().unwrap()),
            _ => None,
        })
        .unwrap()
}

struct Tally {
    transactions: usize,
    foreign_rows_seen: i64,
    rows_seen_without_context: i64,
}

/// Only the simple query protocol is used: in transaction pooling mode a server connection is
/// bound to a client just for the duration of one transaction.
fn client(first: usize) -> Tally {
    let mut c = app_via_pgbouncer();
    let tokens = [token(TENANT_A, "read"), token(TENANT_B, "read")];
    let expected = [ROWS_A, ROWS_B];
    let tenants = [TENANT_A, TENANT_B];
    let mut t = Tally {
        transactions: 0,
        foreign_rows_seen: 0,
        rows_seen_without_context: 0,
    };
    for i in 0..TRANSACTIONS_PER_CLIENT {
        let k = (first + i) % 2;
        c.batch_execute("BEGIN").unwrap();
        if i % 2 == 0 {
            c.batch_execute(&format!("SELECT warden.authenticate('{}')", tokens[k]))
                .unwrap();
        } else {
            c.batch_execute(&format!("SET LOCAL warden.context_token = '{}'", tokens[k]))
                .unwrap();
        }
        let own = scalar(&mut c, "SELECT count(*) FROM docs");
        let foreign = scalar(
            &mut c,
            &format!(
                "SELECT count(*) FROM docs WHERE tenant_id <> '{}'",
                tenants[k]
            ),
        );
        c.batch_execute("COMMIT").unwrap();
        assert_eq!(
            own, expected[k],
            "transaction {i}: wrong row count for tenant {}",
            tenants[k]
        );
        t.foreign_rows_seen += foreign;
        t.transactions += 1;
        // now and then, a session-level SET: refused, so it cannot reach the next client
        if i % 50 == 25 {
            let refused = c.batch_execute(&format!("SET warden.context_token = '{}'", tokens[k]));
            assert_eq!(sqlstate(refused), "22023");
        }
        // every tenth round, a transaction that never authenticates must see nothing
        if i % 10 == 0 {
            t.rows_seen_without_context += scalar(&mut c, "SELECT count(*) FROM docs");
            t.transactions += 1;
        }
    }
    t
}

#[test]
fn pgbouncer_transaction_pooling_never_carries_a_context_to_another_transaction() {
    let mut check = app_via_pgbouncer();
    assert_eq!(scalar(&mut check, "SELECT count(*) FROM docs"), 0);
    drop(check);

    let handles: Vec<_> = (0..2)
        .map(|first| thread::spawn(move || client(first)))
        .collect();
    let tallies: Vec<Tally> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let total: usize = tallies.iter().map(|t| t.transactions).sum();
    let foreign: i64 = tallies.iter().map(|t| t.foreign_rows_seen).sum();
    let without: i64 = tallies.iter().map(|t| t.rows_seen_without_context).sum();
    println!("pgbouncer: {total} transactions, {foreign} foreign rows seen, {without} rows seen without context");
    assert!(total >= 10_000);
    assert_eq!(foreign, 0);
    assert_eq!(without, 0);

    // the pool really was 2 server connections, shared by both clients
    let mut admin = admin();
    let servers: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'it_app'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(servers <= 2, "{servers} server connections");
}
