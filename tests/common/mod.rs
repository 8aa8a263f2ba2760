//! Shared helpers for the integration tests. scripts/test.sh starts a scratch cluster, loads
//! tests/fixture.sql and passes the addresses in the environment:
//! WARDEN_TEST_HOST/PORT/DB, WARDEN_JWT_SECRET, and WARDEN_PGBOUNCER_PORT for the pooler test.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use postgres::{Client, NoTls};
use serde::Serialize;

pub const TENANT_A: &str = "aaaaaaaa-0000-0000-0000-00000000000a";
pub const TENANT_B: &str = "bbbbbbbb-0000-0000-0000-00000000000b";
pub const ACTOR: &str = "00000000-0000-0000-0000-0000000000f1";
pub const ROWS_A: i64 = 10;
pub const ROWS_B: i64 = 7;

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through scripts/test.sh"))
}

pub fn secret() -> String {
    env("WARDEN_JWT_SECRET")
}

fn connect_to(port: &str, user: &str) -> Client {
    let dsn = format!(
        "host={} port={port} dbname={} user={user} application_name=warden-tests",
        env("WARDEN_TEST_HOST"),
        env("WARDEN_TEST_DB")
    );
    Client::connect(&dsn, NoTls).unwrap_or_else(|e| panic!("connect {dsn}: {e}"))
}

/// A TCP connection to the scratch cluster as `user`.
pub fn connect(user: &str) -> Client {
    connect_to(&env("WARDEN_TEST_PORT"), user)
}

/// The application role: no superuser, no BYPASSRLS.
pub fn app() -> Client {
    let mut c = connect("it_app");
    let row = c
        .query_one(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .unwrap();
    assert!(
        !row.get::<_, bool>(0) && !row.get::<_, bool>(1),
        "tests must run as an ordinary role"
    );
    c
}

/// The same application role, through PgBouncer.
pub fn app_via_pgbouncer() -> Client {
    connect_to(&env("WARDEN_PGBOUNCER_PORT"), "it_app")
}

/// A superuser connection, only to verify what the attacker could not see.
pub fn admin() -> Client {
    connect("postgres")
}

#[derive(Serialize)]
pub struct Claims<'a> {
    pub tenant_id: &'a str,
    pub sub: &'a str,
    pub role: &'a str,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token minted the way an application's auth server mints it: with the `jsonwebtoken` crate.
pub fn sign(claims: &Claims<'_>, secret: &str) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A valid token for `tenant` at `level`, good for five minutes.
pub fn token(tenant: &str, level: &str) -> String {
    sign(
        &Claims {
            tenant_id: tenant,
            sub: ACTOR,
            role: level,
            exp: now() + 300,
            nbf: None,
            iat: Some(now()),
        },
        &secret(),
    )
}

/// `token` with its payload replaced by `payload_json` and the original signature kept.
pub fn with_payload(token: &str, payload_json: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = b64.encode(payload_json);
    parts.join(".")
}

/// An unsigned token (`alg: none`) claiming `tenant` as admin.
pub fn unsigned(tenant: &str) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(format!(
        r#"{{"tenant_id":"{tenant}","sub":"{ACTOR}","role":"admin","exp":{}}}"#,
        now() + 300
    ));
    format!("{header}.{payload}.")
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate<T: std::fmt::Debug>(r: Result<T, postgres::Error>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| format!("no SQLSTATE: {e}")),
    }
}
