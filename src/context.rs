//! The per-transaction tenant/actor context.
//!
//! Design: the context *is* a signed HS256 token, held in the superuser-only setting
//! `warden.context_token` and set with SET LOCAL semantics (`GUC_ACTION_LOCAL`). So:
//! - it ends with the transaction (COMMIT or ROLLBACK) and ROLLBACK TO SAVEPOINT restores the
//!   context that was in force when the savepoint was taken, exactly like `SET LOCAL`;
//! - an application role cannot SET, `set_config()` or even read it (permission denied);
//! - every read re-checks the signature and expiry against `warden.jwt_secret`, with a one-entry
//!   per-backend cache keyed by the token bytes and the secret. A backend that did not mint the
//!   token (a parallel worker, a Citus worker node given the same setting) verifies it itself
//!   and trusts nothing it cannot verify.
//!
//! Without a valid token every accessor returns NULL/false: fail closed.

use std::cell::RefCell;
use std::ffi::CString;
use std::time::{SystemTime, UNIX_EPOCH};

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgSqlErrorCode, Uuid};

use crate::errors::SqlError;
use crate::gucs;
use crate::jwt::{self, Claims, Expectations, JwtError, Key};
use crate::level::{Level, UnknownLevel};

/// The role whose members may call `warden.set_context()`.
pub const SETTER_ROLE: &str = "warden_context_setter";
/// `iss` of the tokens `warden.set_context()` mints.
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
    #[error("cannot mint a context token: {0}")]
    Mint(JwtError),
}

impl SqlError for ContextError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            ContextError::Token(e) | ContextError::Mint(e) if e.is_configuration() => {
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            ContextError::Token(_) | ContextError::NoToken => {
                ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION
            }
            ContextError::NotSetter(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            ContextError::Level(_) | ContextError::Null(_) | ContextError::Mint(_) => {
                ERRCODE_INVALID_PARAMETER_VALUE
            }
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
            ContextError::Token(JwtError::Audience(_) | JwtError::Issuer(_)) => {
                "The token was issued for another audience or by another issuer (warden.jwt_audience, warden.jwt_issuer)."
            }
            ContextError::Token(_) | ContextError::NoToken => {
                "Pass a compact JWT with the claims tenant_id (uuid), sub (uuid), role (read|write|delete|admin) and exp."
            }
            ContextError::NotSetter(_) => "A superuser grants it: GRANT warden_context_setter TO <middleware role>;",
            ContextError::Level(_) => "Use one of: read, write, delete, admin.",
            ContextError::Null(_) | ContextError::Mint(_) => return None,
        };
        Some(h.to_string())
    }
}
crate::sql_error!(ContextError);

struct Cached {
    token: Vec<u8>,
    secret: Vec<u8>,
    claims: Claims,
}

thread_local! {
    /// The last token verified in this backend, with the secret it was verified against.
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn leeway() -> i64 {
    i64::from(gucs::JWT_LEEWAY.get())
}

/// Stores a verified token in the cache with the current secret, reusing its buffers (one entry:
/// the common case is one token per transaction, read by every statement of that transaction).
fn remember(token: &[u8], claims: Claims) {
    gucs::with_bytes(&gucs::JWT_SECRET, |secret| {
        CACHE.with_borrow_mut(|cache| {
            let entry = cache.get_or_insert_with(|| Cached {
                token: Vec::new(),
                secret: Vec::new(),
                claims,
            });
            entry.token.clear();
            entry.token.extend_from_slice(token);
            if entry.secret != secret {
                entry.secret.clear();
                entry.secret.extend_from_slice(secret);
            }
            entry.claims = claims;
        })
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

/// The verified context of this transaction, or `None` (no context, or one that fails checks).
pub fn current() -> Option<Claims> {
    gucs::with_bytes(&gucs::CONTEXT_TOKEN, |token| {
        if token.is_empty() {
            return None;
        }
        let now = now_secs();
        let hit = gucs::with_bytes(&gucs::JWT_SECRET, |secret| {
            CACHE.with_borrow(|c| {
                c.as_ref()
                    .filter(|c| c.token == token && c.secret == secret)
                    .map(|c| c.claims)
            })
        });
        if let Some(claims) = hit {
            return claims.valid_at(now, leeway()).then_some(claims);
        }
        let text = std::str::from_utf8(token).ok()?;
        let claims = with_key(|key| {
            let expect = Expectations {
                key,
                audience: None,
                issuer: None,
                leeway: leeway(),
                now,
            };
            jwt::verify(text, &expect)
        })
        .ok()?
        .ok()?;
        remember(token, claims);
        Some(claims)
    })
}

/// Installs `token` as this transaction's context (SET LOCAL semantics). `verified` are its
/// claims when the caller has just verified or minted it with the current secret: they seed the
/// cache so the statements that follow do not verify it again.
fn install(token: &str, verified: Option<Claims>) {
    // Tokens are base64url and dots only, so they never contain a NUL.
    let value = CString::new(token).unwrap_or_default();
    // SAFETY: plain call into the GUC machinery with valid C strings. PGC_SUSET is the privilege
    // we assert (the C code is trusted, not the caller); errors are raised at ERROR level.
    unsafe {
        pg_sys::set_config_option(
            gucs::CONTEXT_TOKEN_NAME.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            pgrx::PgLogLevel::ERROR as i32,
            false,
        );
    }
    if let Some(claims) = verified {
        remember(token.as_bytes(), claims);
    }
}

fn to_pg(u: uuid::Uuid) -> Uuid {
    Uuid::from_bytes(*u.as_bytes())
}

fn from_pg(u: Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*u)
}

/// Verifies an HS256 JWT and makes its claims this transaction's context.
#[pg_extern(volatile, parallel_unsafe)]
fn authenticate(token: Option<&str>) -> Result<(), ErrorReport> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(ContextError::NoToken)?;
    let audience = gucs::string(&gucs::JWT_AUDIENCE);
    let issuer = gucs::string(&gucs::JWT_ISSUER);
    let claims = with_key(|key| {
        let expect = Expectations {
            key,
            audience: audience.as_deref(),
            issuer: issuer.as_deref(),
            leeway: leeway(),
            now: now_secs(),
        };
        jwt::verify(token, &expect)
    })
    .and_then(|verified| verified)
    .map_err(ContextError::Token)?;
    install(token, Some(claims));
    Ok(())
}

fn ensure_setter() -> Result<(), ContextError> {
    let role_name = CString::new(SETTER_ROLE).unwrap_or_default();
    // SAFETY: catalog lookups with valid arguments; missing_ok = true never raises.
    unsafe {
        let setter = pg_sys::get_role_oid(role_name.as_ptr(), true);
        let me = pg_sys::GetUserId();
        if setter != pg_sys::InvalidOid && pg_sys::has_privs_of_role(me, setter) {
            return Ok(());
        }
        let name = pg_sys::GetUserNameFromId(me, true);
        let name = if name.is_null() {
            me.to_u32().to_string()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        };
        Err(ContextError::NotSetter(name))
    }
}

/// The trusted setter for an application's own auth middleware: mints a context token with the
/// server secret and installs it. Only members of `warden_context_setter` may call it.
#[pg_extern(volatile, parallel_unsafe)]
fn set_context(
    tenant: Option<Uuid>,
    actor: Option<Uuid>,
    level: Option<&str>,
) -> Result<(), ErrorReport> {
    ensure_setter()?;
    let tenant = tenant.ok_or(ContextError::Null("tenant"))?;
    let actor = actor.ok_or(ContextError::Null("actor"))?;
    let level: Level = level
        .ok_or(ContextError::Null("level"))?
        .parse()
        .map_err(ContextError::Level)?;
    let now = now_secs();
    let claims = Claims {
        tenant: from_pg(tenant),
        actor: from_pg(actor),
        level,
        exp: now + i64::from(gucs::CONTEXT_TTL.get()),
        nbf: None,
    };
    let token =
        with_key(|key| jwt::sign(&claims, now, MINTED_ISSUER, key)).map_err(ContextError::Mint)?;
    install(&token, Some(claims));
    Ok(())
}

/// Ends the context before the transaction does.
#[pg_extern(volatile, parallel_unsafe)]
fn clear_context() {
    install("", None);
}

#[pg_extern(stable, parallel_safe)]
fn current_tenant() -> Option<Uuid> {
    current().map(|c| to_pg(c.tenant))
}

#[pg_extern(stable, parallel_safe)]
fn current_actor() -> Option<Uuid> {
    current().map(|c| to_pg(c.actor))
}

#[pg_extern(stable, parallel_safe)]
fn current_level() -> Option<&'static str> {
    current().map(|c| c.level.as_str())
}

/// Whether the context's level implies `level` (read < write < delete < admin). False without one.
#[pg_extern(stable, parallel_safe)]
fn has_level(level: &str) -> Result<bool, ErrorReport> {
    let required: Level = level.parse().map_err(ContextError::Level)?;
    Ok(current().is_some_and(|c| c.level.implies(required)))
}

/// The current tenant when the context holds `level`, else NULL. The row-level security policies
/// call it once per statement, as `(SELECT warden.tenant_with_level('read'))`.
#[pg_extern(stable, parallel_safe)]
fn tenant_with_level(level: &str) -> Result<Option<Uuid>, ErrorReport> {
    let required: Level = level.parse().map_err(ContextError::Level)?;
    Ok(current()
        .filter(|c| c.level.implies(required))
        .map(|c| to_pg(c.tenant)))
}
