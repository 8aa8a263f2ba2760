//! The per-transaction tenant/actor context.
//!
//! Design: the context *is* a signed HS256 token, held in the setting `warden.context_token`.
//! - The setting's check hook verifies every value before PostgreSQL stores it (signature, alg,
//!   exp, nbf, aud, iss, claims): `SET warden.context_token = 'forged'` fails exactly as
//!   `warden.authenticate('forged')` does (28000), so nothing unverified is ever stored. Any role may
//!   set it, which is what lets Citus forward it to worker nodes with `SET LOCAL`.
//! - Only a transaction-local value counts (SET LOCAL, or `GUC_ACTION_LOCAL` from authenticate and
//!   set_context). A session-level value (`SET`, `set_config(..., false)`) is ignored, and stored
//!   values (ALTER ROLE/DATABASE SET, startup options, function SET clauses) are refused: either
//!   would outlive the transaction and reach the next client of a pooled connection.
//! - ROLLBACK TO SAVEPOINT restores the context in force when the savepoint was taken, exactly
//!   like `SET LOCAL`; COMMIT and ROLLBACK end it.
//! - Every read re-verifies: a per-transaction verdict is cached and reused only while the
//!   transaction, the carrier (its assign hook bumps a generation counter) and the verification
//!   settings (secret, audience, issuer, leeway) are unchanged, and while the token has not expired
//!   at the start of the current statement. A cache hit costs a few comparisons.
//! - Parallel workers never read the context: the readers are PARALLEL RESTRICTED, so policies'
//!   InitPlans run in the leader and pass the tenant to the workers. A worker that is asked anyway
//!   answers "no context" (fail closed): it cannot tell whether the leader's value was
//!   transaction-local.
//!
//! Without a valid, transaction-local token every accessor returns NULL/false: fail closed.
//!
//! Floor 2, authentication: uses the ground and `jwt`; reports to the event path through the [`Sink`] it
//! registers. `revocation` (deleted accounts) and `issuers` (the identity providers' registry) are
//! the tables every verification consults.

pub mod issuers;
pub mod revocation;
pub mod transport;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr, CString};
use std::time::{SystemTime, UNIX_EPOCH};

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, Uuid};

use crate::errors::SqlError;
use crate::gucs;
use crate::jwt::{self, Claims, Expectations, JwtError, Key};
#[allow(unused_imports)]
use crate::planner;
use crate::types::ident::Ident;
use crate::types::level::{Level, UnknownLevel};

/// The role whose members may call `warden.set_context()`.
pub const SETTER_ROLE: &str = "warden_context_setter";
/// `iss` of the tokens `warden.set_context()` mints when `warden.jwt_issuer` is not set.
const MINTED_ISSUER: &str = "warden";

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("authentication failed: {0}")]
    Token(JwtError),
    #[error("authentication failed: no token given")]
    NoToken,
    #[error("permission denied to set the warden context: role \"{0}\" is not a member of {SETTER_ROLE}")]
    NotSetter(String),
    #[error("{0}")]
    Level(#[from] UnknownLevel),
    #[error("{0} must not be NULL")]
    Null(&'static str),
    #[error("{what} {reason}")]
    BadIdentifier {
        what: &'static str,
        reason: crate::types::ident::IdentError,
    },
    #[error("cannot mint a context token: {0}")]
    Mint(JwtError),
    #[error("warden.context_token is transaction-local: it cannot be {0}")]
    NotTransactional(&'static str),
    #[error("no context without TLS: {0}, and warden.require_tls is on")]
    NoTls(String),
    #[error("internal error: {0}")]
    Utility(String),
}

impl SqlError for ContextError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            ContextError::Token(e) | ContextError::Mint(e) if e.is_configuration() => {
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            ContextError::Token(_) | ContextError::NoToken | ContextError::NoTls(_) => {
                ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
            }
            ContextError::NotSetter(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            ContextError::Level(_)
            | ContextError::Null(_)
            | ContextError::BadIdentifier { .. }
            | ContextError::Mint(_)
            | ContextError::NotTransactional(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            ContextError::Utility(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        let h = match self {
            ContextError::Token(JwtError::NoSecret | JwtError::WeakSecret(_))
            | ContextError::Mint(JwtError::NoSecret | JwtError::WeakSecret(_)) => {
                "A superuser sets a secret of at least 32 bytes: ALTER SYSTEM SET warden.jwt_secret = '...'; SELECT pg_reload_conf();"
            }
            ContextError::Token(JwtError::Expired(_) | JwtError::NotYetValid(_)) => {
                "Obtain a fresh token from the auth server, or check the clocks (warden.jwt_leeway)."
            }
            ContextError::Token(JwtError::Algorithm(_) | JwtError::BadSignature) => {
                "Tokens must be signed with HS256 and the secret in warden.jwt_secret."
            }
            ContextError::Token(JwtError::Revoked(_)) => {
                "The account was deleted (warden.delete_account) or its tokens revoked (warden.revoke_tokens): sign in again for a token issued after that moment."
            }
            ContextError::Token(JwtError::Audience(_) | JwtError::Issuer(_)) => {
                "The token was issued for another audience or by another issuer (warden.jwt_audience, warden.jwt_issuer)."
            }
            ContextError::Token(JwtError::NoTenant(_)) => {
                "Name the tenant: SELECT warden.authenticate($1, 'org_...'), one of the organizations the token lists."
            }
            ContextError::Token(JwtError::NotInToken(_)) => {
                "The token's user is not a member of that tenant: name one of the organizations the token lists, or none for a token with a single tenant."
            }
            ContextError::Token(JwtError::Mfa(_)) => {
                "Sign in again with a second factor: this issuer is registered with admin_requires_mfa, and an admin token without MFA is refused."
            }
            ContextError::Token(JwtError::Role { .. }) => {
                "Map the provider's role in the issuer's levels option: SELECT warden.register_issuer(issuer, jwks, options || '{\"levels\": {\"<role>\": \"write\"}}')."
            }
            ContextError::Token(_) | ContextError::NoToken => {
                "Pass a compact JWT with the claims tenant_id and sub (each a string or an integer: a uuid, a number or a provider's id), role (read|write|delete|admin) and exp."
            }
            ContextError::NotSetter(_) => "A superuser grants it: GRANT warden_context_setter TO <middleware role>;",
            ContextError::Level(_) => "Use one of: read, write, delete, admin.",
            ContextError::BadIdentifier { .. } => {
                "An identifier is 1 to 255 bytes of text without control characters: a uuid, a number or a provider's id (org_2abc...)."
            }
            ContextError::NotTransactional(_) => {
                "Authenticate in every transaction: SELECT warden.authenticate($1), or SET LOCAL warden.context_token = $1, between BEGIN and COMMIT."
            }
            ContextError::NoTls(_) => {
                "Connect with TLS 1.2 or later (sslmode=require, or verify-full with the server's CA), over TCP: a Unix socket has no TLS. Poolers must use TLS to the server too (PgBouncer: server_tls_sslmode = require)."
            }
            ContextError::Null(_) | ContextError::Mint(_) | ContextError::Utility(_) => return None,
        };
        Some(h.to_string())
    }
}
crate::errors::sql_error!(ContextError);

/// Tokens verified in this backend, by the SHA-256 of the token (the token itself is not kept),
/// under the generation of the verification settings (secret, audience, issuer, leeway) and of
/// the issuer registry (a rotated JWKS) they were verified under: a pooled connection that sees a
/// token again pays a hash and a lookup, not a signature check. An entry lasts until its `exp`
/// (plus the leeway); at most [`CACHE_ENTRIES`] are kept.
struct Cache {
    config: u64,
    registry: u64,
    entries: HashMap<[u8; 32], Verified>,
}

/// Verified claims and the clock skew their issuer allows (`warden.jwt_leeway` for HS256 tokens,
/// the issuer's `leeway_seconds` for a registered provider's): what the validity window of a cached
/// verdict is checked with.
#[derive(Clone)]
struct Verified {
    claims: Claims,
    leeway: i64,
}

/// Enough for every client of a pooled server connection; a full cache drops its expired entries,
/// then everything (verifying a token again is correct, only slower).
const CACHE_ENTRIES: usize = 1024;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        config: 0,
        registry: 0,
        entries: HashMap::new(),
    });
}

fn token_hash(token: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    let mut h = [0u8; 32];
    h.copy_from_slice(d.as_ref());
    h
}

/// The claims of `token` when this backend verified it under the current settings.
fn cached(token: &[u8]) -> Option<Verified> {
    let config = gucs::config_generation();
    let registry = crate::catalog::generation();
    CACHE.with_borrow(|c| {
        if c.config != config || c.registry != registry || c.entries.is_empty() {
            return None;
        }
        c.entries.get(&token_hash(token)).cloned()
    })
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET: i64 = 946_684_800;

/// The start of the current statement, in Unix seconds: what a cached verdict's expiry is checked
/// against (a token that expires while a statement runs is valid until that statement ends).
fn statement_start_secs() -> i64 {
    // SAFETY: reads a timestamp PostgreSQL keeps for the current statement.
    let ts = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    ts.div_euclid(1_000_000) + PG_EPOCH_OFFSET
}

fn leeway() -> i64 {
    i64::from(gucs::JWT_LEEWAY.get())
}

/// Stores a verified token in the cache.
fn remember(token: &[u8], claims: Claims, leeway: i64) {
    let config = gucs::config_generation();
    let registry = crate::catalog::generation();
    let now = now_secs();
    CACHE.with_borrow_mut(|c| {
        if c.config != config || c.registry != registry {
            c.entries.clear();
            c.config = config;
            c.registry = registry;
        }
        if c.entries.len() >= CACHE_ENTRIES {
            c.entries
                .retain(|_, v| now < v.claims.exp.saturating_add(v.leeway));
            if c.entries.len() >= CACHE_ENTRIES {
                c.entries.clear();
            }
        }
        c.entries
            .insert(token_hash(token), Verified { claims, leeway });
    })
}

thread_local! {
    /// The HS256 key for the current `warden.jwt_secret`, rebuilt when the secret changes.
    static KEY: RefCell<Option<(Vec<u8>, Key)>> = const { RefCell::new(None) };
}

/// Runs `f` with the key for the current secret; fails when the secret is unset or too short.
fn with_key<R>(f: impl FnOnce(&Key) -> R) -> Result<R, JwtError> {
    gucs::with_bytes(&gucs::JWT_SECRET, |secret| {
        KEY.with_borrow_mut(|slot| match slot {
            Some((s, key)) if s.as_slice() == secret => Ok(f(key)),
            _ => {
                let key = Key::new(secret)?;
                let r = f(&key);
                *slot = Some((secret.to_vec(), key));
                Ok(r)
            }
        })
    })
}

/// Full verification of `token` at `now` against the current settings: signature, algorithm,
/// validity window, audience and issuer when configured, and the claims. A token verified
/// under the same settings before is answered from the cache (only its validity window is checked
/// again).
fn verify(token: &[u8], now: i64) -> Result<Claims, JwtError> {
    verify_full(token, now).map(|v| v.claims)
}

/// [`verify`], with the leeway the claims were verified with.
fn verify_full(token: &[u8], now: i64) -> Result<Verified, JwtError> {
    if let Some(Verified { claims, leeway }) = cached(token) {
        // A cached token verified once; the window is re-checked (it was valid then).
        return if claims.valid_at(now, leeway) {
            not_deleted(claims).map(|claims| Verified { claims, leeway })
        } else if now >= claims.exp.saturating_add(leeway) {
            Err(JwtError::Expired(claims.exp))
        } else {
            Err(JwtError::NotYetValid(claims.nbf.unwrap_or(now)))
        };
    }
    let text = std::str::from_utf8(token).map_err(|_| JwtError::Malformed("token is not UTF-8"))?;
    // The carrier of `authenticate(token, tenant)` is the token and, as a fourth part, the chosen
    // tenant (base64url): whoever sets it could have called authenticate with that tenant.
    let (text, chosen) = split_carrier(text)?;
    let chosen = chosen.as_deref();
    // A token of a registered identity provider is verified with that provider's keys; an HS256
    // token with the server secret, unless it claims a registered issuer (the classic confusion:
    // HS256 signed with a provider's public key as the secret).
    // (a token whose header does not even parse takes the HS256 path, which says what is wrong
    // exactly as before registered issuers existed)
    if let Ok(peek) = jwt::peek(text) {
        let registered = match &peek.iss {
            Some(iss) => crate::context::issuers::registry()
                .map_err(|e| {
                    JwtError::Revoked(format!("the identity providers could not be read ({e})"))
                })?
                .get(iss)
                .cloned(),
            None => None,
        };
        if let Some(issuer) = registered {
            let iss = peek.iss.as_deref().unwrap_or_default();
            let claims = jwt::verify_issued(text, iss, &issuer.keys, &issuer.options, now, chosen)?;
            let claims = not_deleted(claims)?;
            let leeway = issuer.options.leeway;
            remember(token, claims.clone(), leeway);
            return Ok(Verified { claims, leeway });
        }
        if jwt::is_asymmetric(&peek.alg) {
            return Err(match peek.iss {
                Some(iss) => JwtError::UnknownIssuer(iss),
                None => JwtError::NoIssuer(peek.alg),
            });
        }
    }
    let audience = gucs::string(&gucs::JWT_AUDIENCE);
    let issuer = gucs::string(&gucs::JWT_ISSUER);
    let claims = with_key(|key| {
        jwt::verify(
            text,
            &Expectations {
                key,
                audience: audience.as_deref(),
                issuer: issuer.as_deref(),
                leeway: leeway(),
                now,
            },
        )
    })??;
    if let Some(c) = chosen {
        if c != claims.tenant.as_str() {
            return Err(JwtError::NotInToken(c.chars().take(255).collect()));
        }
    }
    let claims = not_deleted(claims)?;
    remember(token, claims.clone(), leeway());
    Ok(Verified {
        claims,
        leeway: leeway(),
    })
}

/// The token and the tenant chosen for it (see [`carrier`]).
fn split_carrier(text: &str) -> Result<(&str, Option<String>), JwtError> {
    match text.match_indices('.').nth(2) {
        None => Ok((text, None)),
        Some((i, _)) => {
            let t = URL_SAFE_NO_PAD
                .decode(&text[i + 1..])
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|t| !t.is_empty())
                .ok_or(JwtError::Malformed(
                    "the chosen tenant is not base64url text",
                ))?;
            Ok((&text[..i], Some(t)))
        }
    }
}

/// What `warden.context_token` carries: the token, and the chosen tenant when one is named.
fn carrier(token: &str, tenant: Option<&str>) -> String {
    match tenant {
        None => token.to_owned(),
        Some(t) => format!("{token}.{}", URL_SAFE_NO_PAD.encode(t)),
    }
}

/// Refuses the claims of an account deleted after the token was issued (warden.delete_account).
fn not_deleted(claims: Claims) -> Result<Claims, JwtError> {
    match crate::context::revocation::deleted_before(&claims.actor, claims.iat) {
        Ok(None) => Ok(()),
        Ok(Some(at)) => Err(JwtError::Revoked(format!(
            "the account of {} was deleted at {at} (Unix time), after this token was issued",
            claims.actor
        ))),
        Err(e) => Err(JwtError::Revoked(format!(
            "whether the account of {} was deleted cannot be determined ({e})",
            claims.actor
        ))),
    }?;
    match crate::context::revocation::revoked_before(&claims.actor, &claims.tenant, claims.iat) {
        Ok(None) => Ok(claims),
        Ok(Some(at)) => Err(JwtError::Revoked(format!(
            "the tokens of {} issued before {at} (Unix time) were revoked (warden.revoke_tokens)",
            claims.actor
        ))),
        Err(e) => Err(JwtError::Revoked(format!(
            "whether the tokens of {} were revoked cannot be determined ({e})",
            claims.actor
        ))),
    }
}

/// The verdict about the context for one transaction, carrier generation and settings generation.
struct Verdict {
    lxid: pg_sys::LocalTransactionId,
    carrier: u64,
    config: u64,
    verified: Option<Verified>,
}

thread_local! {
    static VERDICT: RefCell<Verdict> = const {
        RefCell::new(Verdict { lxid: 0, carrier: 0, config: 0, verified: None })
    };
}

pub use crate::catalog::local_xid;

/// Whether this process is a parallel worker (which restores its leader's state and never reads
/// the context itself).
pub fn in_parallel_worker() -> bool {
    // SAFETY: reads a global set once when a parallel worker starts.
    unsafe { pg_sys::ParallelWorkerNumber >= 0 }
}

/// The verified context of this transaction, or `None` (no context, a session-level value, a
/// token that no longer verifies, a parallel worker).
pub fn current() -> Option<Claims> {
    if in_parallel_worker() {
        return None;
    }
    let lxid = local_xid();
    let carrier = gucs::carrier_generation();
    let config = gucs::config_generation();
    let hit = VERDICT.with_borrow(|v| {
        (lxid != 0 && v.lxid == lxid && v.carrier == carrier && v.config == config)
            .then(|| v.verified.clone())
    });
    if let Some(verified) = hit {
        return verified
            .filter(|v| statement_start_secs() < v.claims.exp.saturating_add(v.leeway))
            .map(|v| v.claims);
    }
    let verified = if gucs::carrier_is_transaction_local() {
        gucs::with_bytes(&gucs::CONTEXT_TOKEN, |token| {
            (!token.is_empty())
                .then(|| verify_full(token, now_secs()).ok())
                .flatten()
        })
    } else {
        None
    };
    VERDICT.set(Verdict {
        lxid,
        carrier,
        config,
        verified: verified.clone(),
    });
    verified.map(|v| v.claims)
}

/// The verification a value of the carrier gets, as an error: used by the utility hook so that a
/// forged token given to `SET` (without LOCAL) fails with 28000 exactly as it would with LOCAL.
pub fn verify_carrier_value(value: &[u8]) -> Result<(), ContextError> {
    if value.is_empty() {
        return Ok(());
    }
    verify(value, now_secs())
        .map(|_| ())
        .map_err(ContextError::Token)
}

/// Sets a GUC check hook's error: the same SQLSTATE, message and hint as the ContextError.
fn refuse(e: ContextError) -> bool {
    let report = |s: String| {
        let c = CString::new(s.replace('\0', "")).unwrap_or_default();
        // SAFETY: pstrdup copies into the current memory context, which outlives the ereport.
        unsafe { pg_sys::pstrdup(c.as_ptr()) }
    };
    // SAFETY: the GUC_check_* variables are PostgreSQL's channel from a check hook to its error.
    unsafe {
        pg_sys::GUC_check_errcode(e.sqlstate() as i32);
        pg_sys::GUC_check_errmsg_string = report(format!("warden: {e}"));
        if let Some(h) = e.hint() {
            pg_sys::GUC_check_errhint_string = report(h);
        }
    }
    false
}

/// Defines the carrier with its check hook (from `_PG_init`).
pub fn init() {
    crate::gucs::define_carrier(check_carrier);
    // SAFETY: registers a callback for the rest of this process's life.
    unsafe { pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut()) };
}

thread_local! {
    /// The carrier's generation at the start of each open subtransaction, innermost last, with
    /// the top-level transaction they belong to.
    static SUBXACT_CARRIER: RefCell<(pg_sys::LocalTransactionId, Vec<u64>)> =
        const { RefCell::new((0, Vec::new())) };
    /// The carrier changed inside a subtransaction that was then released (RELEASE SAVEPOINT, the
    /// normal end of a PL/pgSQL exception block): the transaction it belongs to.
    static REPROPAGATE: std::cell::Cell<pg_sys::LocalTransactionId> = const { std::cell::Cell::new(0) };
}

/// Citus forgets a subtransaction's `SET LOCAL`s when it is released (its list of SET commands to
/// replay is popped with the subtransaction), so a worker connection opened after a `RELEASE` would
/// get the context of before the savepoint while this node keeps the one set inside it. This notes
/// that the carrier changed inside a released subtransaction; [`repropagate`] then sets it again at
/// the outer level before the next statement runs.
#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    _my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut c_void,
) {
    use pg_sys::SubXactEvent::*;
    let lxid = local_xid();
    SUBXACT_CARRIER.with_borrow_mut(|(owner, stack)| {
        if *owner != lxid {
            *owner = lxid;
            stack.clear();
        }
        match event {
            SUBXACT_EVENT_START_SUB => stack.push(gucs::carrier_generation()),
            SUBXACT_EVENT_COMMIT_SUB => {
                if let Some(at_start) = stack.pop() {
                    if at_start != gucs::carrier_generation() {
                        REPROPAGATE.set(lxid);
                    }
                }
            }
            SUBXACT_EVENT_ABORT_SUB => {
                stack.pop();
            }
            _ => {}
        }
    });
}

/// Whether the carrier changed inside a subtransaction of this transaction that was released.
pub fn needs_repropagation() -> bool {
    let lxid = local_xid();
    lxid != 0 && REPROPAGATE.get() == lxid
}

/// Before a statement (the executor and utility hooks): with Citus loaded, when the carrier
/// changed inside a released subtransaction, sets it again at the current level, so that Citus
/// sends it to every worker connection of the transaction, those it opens from now on included.
/// A failure raises: a statement that could run with another context on a worker does not run.
pub fn repropagate() {
    if !needs_repropagation() || in_parallel_worker() {
        return;
    }
    REPROPAGATE.set(0);
    // SAFETY: reads the transaction state.
    if !unsafe { pg_sys::IsTransactionState() } || !gucs::citus_loaded() {
        return;
    }
    let value = gucs::string(&gucs::CONTEXT_TOKEN).unwrap_or_default();
    if let Err(e) = install(&value, None) {
        crate::errors::report(&e).report(PgLogLevel::ERROR);
    }
}

/// Check hook of `warden.context_token`: only a token that verifies may be stored, and only by a
/// SET or SET LOCAL (or warden's own functions).
#[pg_guard]
pub unsafe extern "C-unwind" fn check_carrier(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    use pg_sys::GucSource::*;
    // SAFETY: PostgreSQL passes a valid pointer to a NUL-terminated string or null.
    let value = unsafe {
        let p = *newval;
        if p.is_null() {
            return true;
        }
        CStr::from_ptr(p).to_bytes()
    };
    if value.is_empty() || in_parallel_worker() {
        // clearing is always allowed; a parallel worker restores its leader's state and never
        // reads the context
        return true;
    }
    match source {
        PGC_S_SESSION => {}
        PGC_S_TEST => {
            return refuse(ContextError::NotTransactional(
                "stored (ALTER ROLE/DATABASE ... SET, a function's SET clause)",
            ))
        }
        _ => {
            return refuse(ContextError::NotTransactional(
                "set for a whole session (connection options, role or database settings)",
            ))
        }
    }
    if let Err(e) = require_tls(std::str::from_utf8(value).ok()) {
        return refuse(e);
    }
    match verify(value, now_secs()) {
        Ok(_) => true,
        Err(e) => {
            let e = ContextError::Token(e);
            // a forged or expired token given to SET LOCAL is a failed authentication too
            audit_failure(
                std::str::from_utf8(value).ok(),
                &e,
                Some("SET warden.context_token"),
            );
            refuse(e)
        }
    }
}

/// Runs one utility statement through SPI, so that every ProcessUtility hook (Citus's) sees it.
/// Raw SPI rather than pgrx's client: that one assigns a transaction id before any statement,
/// which would turn every authentication into a write (and fail on a hot standby).
fn run_utility(sql: &CStr) -> Result<(), ContextError> {
    // SAFETY: a balanced SPI_connect/SPI_finish around one statement; an error inside raises
    // through pgrx's guard and the transaction's abort cleans SPI up.
    let rc = unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            return Err(ContextError::Utility("SPI_connect failed".into()));
        }
        let rc = pg_sys::SPI_execute(sql.as_ptr(), false, 0);
        pg_sys::SPI_finish();
        rc
    };
    if rc == pg_sys::SPI_OK_UTILITY as i32 {
        Ok(())
    } else {
        Err(ContextError::Utility(format!(
            "{} returned SPI code {rc}",
            sql.to_string_lossy()
        )))
    }
}

/// Installs `token` as this transaction's context (SET LOCAL semantics; the check hook verifies
/// it again, from the cache when the caller has just verified or minted it). With Citus loaded, it
/// is installed by an actual `SET LOCAL` statement, after `citus.propagate_set_commands = 'local'`,
/// so that Citus forwards it to every worker node the transaction uses.
fn install(token: &str, verified: Option<Claims>) -> Result<(), ContextError> {
    if let Some(claims) = verified {
        remember(token.as_bytes(), claims, leeway());
    }
    // Verified tokens are base64url and dots only: safe inside a quoted literal, and never a NUL.
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(ContextError::Token(JwtError::Malformed(
            "unexpected characters",
        )));
    }
    if gucs::citus_loaded() {
        run_utility(c"SET LOCAL citus.propagate_set_commands = 'local'")?;
        let set =
            CString::new(format!("SET LOCAL warden.context_token = '{token}'")).unwrap_or_default();
        run_utility(&set)?;
        return Ok(());
    }
    let value = CString::new(token).unwrap_or_default();
    // SAFETY: plain call into the GUC machinery with valid C strings; errors (the check hook's
    // refusal) are raised at ERROR level.
    unsafe {
        pg_sys::set_config_option(
            gucs::CONTEXT_TOKEN_NAME.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            pgrx::PgLogLevel::ERROR as i32,
            false,
        );
    }
    Ok(())
}

fn to_pg(u: uuid::Uuid) -> Uuid {
    Uuid::from_bytes(*u.as_bytes())
}

fn from_pg(u: Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*u)
}

/// Verifies a JWT (HS256 with the server secret, or signed by a registered issuer) and makes its
/// claims this transaction's context; `tenant` chooses one of the organizations of a token that
/// names several (an issuer registered with `orgs`), and must otherwise be the token's own.
#[pg_extern(name = "authenticate", volatile, parallel_unsafe)]
fn authenticate_in(
    token: Option<&str>,
    tenant: default!(Option<&str>, "NULL"),
) -> Result<(), ErrorReport> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        audit_failure(None, &ContextError::NoToken, None);
        return Err(ContextError::NoToken.into());
    };
    if token.matches('.').count() != 2 {
        let e = ContextError::Token(JwtError::Malformed("expected three dot-separated parts"));
        audit_failure(Some(token), &e, None);
        return Err(e.into());
    }
    require_tls(Some(token))?;
    let carried = carrier(token, tenant);
    let token = carried.as_str();
    // verify() leaves the token in the cache, where the check hook finds it
    let claims = match verify(token.as_bytes(), now_secs()) {
        Ok(c) => c,
        Err(e) => {
            let e = ContextError::Token(e);
            audit_failure(Some(token), &e, None);
            return Err(e.into());
        }
    };
    install(token, None)?;
    if gucs::AUDIT_AUTHENTICATION.get() == gucs::AuditAuthentication::All {
        if let Some(sink) = SINK.get() {
            (sink.success)(&claims.actor.to_string(), claims.level.as_str())?;
        }
    }
    Ok(())
}

/// Refuses (and records the refusal) when `warden.require_tls` is on and this connection has no
/// TLS 1.2 or later: checked before any credential is looked at, and again by the carrier's check
/// hook, which every way of establishing a context goes through.
pub fn require_tls(credential: Option<&str>) -> Result<(), ContextError> {
    match transport::refusal() {
        None => Ok(()),
        Some(why) => {
            let e = ContextError::NoTls(why);
            audit_failure(credential, &e, Some("warden.require_tls"));
            Err(e)
        }
    }
}

/// warden 0.1.0-0.5.0's `authenticate(text)`: kept so that a database not yet updated works with
/// this library until `ALTER EXTENSION warden UPDATE` (no SQL is generated for it).
#[pg_extern(sql = false)]
fn authenticate(token: Option<&str>) -> Result<(), ErrorReport> {
    authenticate_in(token, None)
}

/// A failed authentication, as this floor reports it to the event path (see [`Sink`]).
pub struct Failure<'a> {
    /// Why it failed (the error's message).
    pub reason: String,
    /// What the token claimed, when its payload parsed.
    pub claimed_tenant: Option<String>,
    pub claimed_subject: Option<String>,
    /// The signature verified (the token was genuine but expired, not yet valid, for another
    /// audience or issuer, or revoked): the claims are the issuer's.
    pub genuine: bool,
    /// The server's configuration is at fault (no secret...), not the caller.
    pub configuration: bool,
    /// Where the token was given, when not to `authenticate` (`SET warden.context_token`).
    pub via: Option<&'a str>,
}

/// Where authentications are recorded: the event path registers itself at `_PG_init` (this floor
/// is below it and never names it).
pub struct Sink {
    /// Records a failure so that it survives the transaction's rollback; never raises.
    pub failure: fn(&Failure<'_>),
    /// Records a successful `authenticate` (when `warden.audit_authentication = all`), in the
    /// transaction: `actor` and `level` of the verified claims.
    pub success: fn(actor: &str, level: &str) -> Result<(), ErrorReport>,
}

static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();

/// Registers the event path's recorders (once, from `_PG_init`).
pub fn register_sink(sink: Sink) {
    let _ = SINK.set(sink);
}

/// Records a failed authentication as a denied event that survives the rollback: the reason, and
/// what the token claimed (tenant and subject) when its payload parsed. Never the token itself.
/// The tenant and actor columns are filled only when the signature verified (the token was
/// genuine but expired, not yet valid, for another audience or issuer, or had a bad claim).
pub fn audit_failure(token: Option<&str>, e: &ContextError, via: Option<&str>) {
    let (tenant, sub) = token.map(jwt::claimed_identity).unwrap_or_default();
    let genuine = matches!(
        e,
        ContextError::Token(
            JwtError::Expired(_)
                | JwtError::NotYetValid(_)
                | JwtError::Audience(_)
                | JwtError::Issuer(_)
                | JwtError::Revoked(_)
                | JwtError::NoTenant(_)
                | JwtError::NotInToken(_)
                | JwtError::Mfa(_)
                | JwtError::Role { .. }
        )
    );
    let configuration = matches!(e, ContextError::Token(j) if j.is_configuration());
    if let Some(sink) = SINK.get() {
        (sink.failure)(&Failure {
            reason: e.to_string(),
            claimed_tenant: tenant,
            claimed_subject: sub,
            genuine,
            configuration,
            via,
        });
    }
}

/// A token for `claims` issued at `now`, signed with the server secret, for the configured issuer
/// and audience (so that the read path's checks hold).
fn mint(claims: &Claims, now: i64) -> Result<String, ContextError> {
    let issuer = gucs::string(&gucs::JWT_ISSUER);
    let audience = gucs::string(&gucs::JWT_AUDIENCE);
    with_key(|key| {
        jwt::sign(
            claims,
            now,
            issuer.as_deref().unwrap_or(MINTED_ISSUER),
            audience.as_deref(),
            key,
        )
    })
    .map_err(ContextError::Mint)
}

/// The name of role `oid` (its number when it has none, as for a dropped role).
pub fn role_name(oid: pg_sys::Oid) -> String {
    // SAFETY: catalog lookup with missing_ok.
    let name = unsafe { pg_sys::GetUserNameFromId(oid, true) };
    if name.is_null() {
        oid.to_u32().to_string()
    } else {
        // SAFETY: a NUL-terminated string from the catalog.
        unsafe { std::ffi::CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    }
}

/// The current role's name (the one privileges are checked against).
pub fn current_role_name() -> String {
    // SAFETY: reads the current user id.
    role_name(unsafe { pg_sys::GetUserId() })
}

fn ensure_setter() -> Result<(), ContextError> {
    let setter_name = CString::new(SETTER_ROLE).unwrap_or_default();
    // SAFETY: catalog lookups with valid arguments; missing_ok = true never raises.
    unsafe {
        let setter = pg_sys::get_role_oid(setter_name.as_ptr(), true);
        let me = pg_sys::GetUserId();
        if setter != pg_sys::InvalidOid && pg_sys::has_privs_of_role(me, setter) {
            return Ok(());
        }
        Err(ContextError::NotSetter(role_name(me)))
    }
}

/// The trusted setter for an application's own auth middleware: mints a context token with the
/// server secret and installs it. Only members of `warden_context_setter` may call it. Tenant and
/// actor are identifiers (`ident`): a uuid, a number or a provider's id.
#[pg_extern(volatile, parallel_unsafe, name = "set_context")]
fn set_context_ids(
    tenant: Option<&str>,
    actor: Option<&str>,
    level: Option<&str>,
) -> Result<(), ErrorReport> {
    ensure_setter()?;
    let tenant = ident_arg(tenant, "tenant")?;
    let actor = ident_arg(actor, "actor")?;
    set_context_claims(tenant, actor, level)
}

/// `set_context` with uuids, as before 0.6.0.
#[pg_extern(volatile, parallel_unsafe)]
fn set_context(
    tenant: Option<Uuid>,
    actor: Option<Uuid>,
    level: Option<&str>,
) -> Result<(), ErrorReport> {
    ensure_setter()?;
    let tenant = tenant.ok_or(ContextError::Null("tenant"))?;
    let actor = actor.ok_or(ContextError::Null("actor"))?;
    set_context_claims(
        Ident::from_uuid(&from_pg(tenant)),
        Ident::from_uuid(&from_pg(actor)),
        level,
    )
}

/// An identifier argument of a SQL function: NULL, empty, too long or with control characters
/// is 22023.
pub fn ident_arg(v: Option<&str>, what: &'static str) -> Result<Ident, ContextError> {
    let v = v.ok_or(ContextError::Null(what))?;
    Ident::parse(v).map_err(|e| ContextError::BadIdentifier { what, reason: e })
}

fn set_context_claims(tenant: Ident, actor: Ident, level: Option<&str>) -> Result<(), ErrorReport> {
    let level: Level = level
        .ok_or(ContextError::Null("level"))?
        .parse()
        .map_err(ContextError::Level)?;
    let now = now_secs();
    let claims = Claims {
        tenant,
        actor,
        level,
        exp: now + i64::from(gucs::CONTEXT_TTL.get()),
        nbf: None,
        iat: Some(now),
        scopes: None,
    };
    let token = mint(&claims, now)?;
    install(&token, Some(claims))?;
    Ok(())
}

/// Runs `f` under a context warden mints itself for `tenant` (the current actor, admin level),
/// then puts the caller's context back. For `warden.delete_account`, which erases an account's data
/// in every tenant through each tenant's own row level security, after authorizing the caller.
/// An error in `f` aborts the transaction (or the savepoint), which restores the carrier anyway.
pub fn with_tenant_context<R>(
    tenant: Ident,
    actor: Ident,
    f: impl FnOnce() -> R,
) -> Result<R, ContextError> {
    let saved = gucs::string(&gucs::CONTEXT_TOKEN);
    let now = now_secs();
    let claims = Claims {
        tenant,
        actor,
        level: Level::Admin,
        exp: now + 60,
        nbf: None,
        iat: Some(now),
        scopes: None,
    };
    let token = mint(&claims, now)?;
    install(&token, Some(claims))?;
    let r = f();
    install(saved.as_deref().unwrap_or(""), None)?;
    Ok(r)
}

/// Mints a token for `claims` (issued at `now`) and makes it this transaction's context: how
/// `warden.authenticate_key` installs an API key's context after checking the key.
pub(crate) fn install_claims(claims: Claims, now: i64) -> Result<(), ContextError> {
    let token = mint(&claims, now)?;
    install(&token, Some(claims))
}

/// Ends the context before the transaction does.
#[pg_extern(volatile, parallel_unsafe)]
fn clear_context() -> Result<(), ErrorReport> {
    install("", None)?;
    Ok(())
}

/// The current tenant when it is a uuid (as before 0.6.0: hand-written `tenant_id =
/// warden.current_tenant()` policies of uuid columns keep working); NULL for any other identifier.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn current_tenant() -> Option<Uuid> {
    current().and_then(|c| c.tenant.as_uuid()).map(to_pg)
}

/// The current actor when it is a uuid; NULL for any other identifier.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn current_actor() -> Option<Uuid> {
    current().and_then(|c| c.actor.as_uuid()).map(to_pg)
}

/// The current tenant's identifier, whatever its kind.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn current_tenant_id() -> Option<String> {
    current().map(|c| c.tenant.into_string())
}

/// The current actor's identifier, whatever its kind.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn current_actor_id() -> Option<String> {
    current().map(|c| c.actor.into_string())
}

#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn current_level() -> Option<&'static str> {
    current().map(|c| c.level.as_str())
}

/// Whether the context's level implies `level` (read < write < delete < admin). False without one.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn has_level(level: &str) -> Result<bool, ErrorReport> {
    let required: Level = level.parse().map_err(ContextError::Level)?;
    Ok(current().is_some_and(|c| c.level.implies(required)))
}

/// The current tenant when the context holds `level`, else NULL. The row-level security policies
/// call it, as `(SELECT warden.tenant_with_level('read'))` or, for Citus, directly; the planner
/// support function turns a direct call into a once-per-statement InitPlan too.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_level(level: &str) -> Result<Option<Uuid>, ErrorReport> {
    Ok(tenant_at(level)?.and_then(|t| t.as_uuid()).map(to_pg))
}

/// [`tenant_with_level`] for a text or varchar tenant column: the identifier as it is.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_level_text(level: &str) -> Result<Option<String>, ErrorReport> {
    Ok(tenant_at(level)?.map(Ident::into_string))
}

/// [`tenant_with_level`] for a bigint tenant column: the identifier when it is a bigint in
/// canonical decimal form, else NULL (matches no row).
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_level_bigint(level: &str) -> Result<Option<i64>, ErrorReport> {
    Ok(tenant_at(level)?.and_then(|t| t.as_i64()))
}

/// [`tenant_with_level`] for an integer tenant column.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_level_int(level: &str) -> Result<Option<i32>, ErrorReport> {
    Ok(tenant_at(level)?.and_then(|t| t.as_i32()))
}

/// The current tenant when the context holds `level`.
fn tenant_at(level: &str) -> Result<Option<Ident>, ContextError> {
    let required: Level = level.parse().map_err(ContextError::Level)?;
    Ok(current()
        .filter(|c| c.level.implies(required))
        .map(|c| c.tenant))
}
