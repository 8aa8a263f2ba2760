//! Identity providers: `warden.register_issuer` and `warden.unregister_issuer`, which write the
//! registry the authentication floor verifies tokens with (`issuers`), each an audit event.
//! Registering an issuer again replaces its keys and options: that is key rotation. The database
//! never fetches a URL (`scripts/sync_jwks.py` does, outside it).
//!
//! Floor 4, capability: uses the floors below; never another capability.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::{json, Value};

use crate::audit::{NewEvent, Status};
use crate::errors::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0} needs membership in warden_admin (current role: {1})")]
    NotAllowed(&'static str, String),
    #[error("{0}")]
    Invalid(String),
    #[error("the JWKS of issuer \"{issuer}\" is refused: {reason}")]
    Jwks { issuer: String, reason: String },
    #[error("issuer \"{0}\" is not registered")]
    NotRegistered(String),
    #[error("warden.revoke_tokens() of actor \"{0}\" is for the actor themself, an admin of a tenant, warden_admin or a superuser")]
    NotRevoker(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{0}")]
    Record(#[from] crate::audit::record::RecordError),
}

impl SqlError for ProviderError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            ProviderError::NotAllowed(..) | ProviderError::NotRevoker(_) => {
                ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            ProviderError::Invalid(_) | ProviderError::Jwks { .. } => {
                ERRCODE_INVALID_PARAMETER_VALUE
            }
            ProviderError::NotRegistered(_) => ERRCODE_UNDEFINED_OBJECT,
            ProviderError::Internal(_) => ERRCODE_INTERNAL_ERROR,
            ProviderError::Record(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            ProviderError::NotAllowed(..) => "A superuser grants it: GRANT warden_admin TO <role>;".into(),
            ProviderError::Invalid(_) => {
                "SELECT warden.register_issuer('https://issuer.example/', '<its JWKS>', '{\"audience\": \"my-api\"}');".into()
            }
            ProviderError::Jwks { .. } => {
                "Register the provider's published JWKS (its /.well-known/jwks.json, as scripts/sync_jwks.py fetches it): RSA keys of at least 2048 bits, EC P-256 or Ed25519 signing keys.".into()
            }
            ProviderError::NotRegistered(_) => "SELECT issuer FROM warden.issuers;".into(),
            ProviderError::NotRevoker(_) => {
                "Authenticate as that actor, or as an admin of the tenant to sign the actor out of (SELECT warden.authenticate($1)), then call it in the same transaction.".into()
            }
            ProviderError::Record(_) => "ALTER EXTENSION warden UPDATE;".into(),
            ProviderError::Internal(_) => return None,
        })
    }
}
crate::errors::sql_error!(ProviderError);

fn authorize(what: &'static str) -> Result<(), ProviderError> {
    // SAFETY: catalog lookups with missing_ok.
    let ok = unsafe {
        let r = pg_sys::get_role_oid(c"warden_admin".as_ptr(), true);
        pg_sys::superuser()
            || (r != pg_sys::InvalidOid && pg_sys::has_privs_of_role(pg_sys::GetUserId(), r))
    };
    if ok {
        Ok(())
    } else {
        Err(ProviderError::NotAllowed(
            what,
            crate::context::current_role_name(),
        ))
    }
}

fn privileged<R>(f: impl FnOnce() -> Result<R, pgrx::spi::Error>) -> Result<R, ProviderError> {
    crate::catalog::as_owner_of(
        c"issuer_records",
        "warden's identity-provider registry is not installed in this database (ALTER EXTENSION warden UPDATE)",
        || f().map_err(|e| e.to_string()),
    )
    .map_err(ProviderError::Internal)
}

fn record(action: &str, issuer: &str, changes: Value) -> Result<(), ProviderError> {
    if crate::audit::record::installed() {
        let ev = NewEvent::in_context(action, Status::Success)
            .resource("issuer", Some(issuer))
            .changes(changes.to_string());
        crate::audit::record(&ev)?;
    }
    Ok(())
}

/// Registers (or, called again, replaces: key rotation) an identity provider: its JWKS and the
/// options that say how to read its tokens. Superusers and warden_admin.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn register_issuer(
    issuer: Option<&str>,
    jwks: Option<JsonB>,
    options: default!(Option<JsonB>, "'{}'"),
) -> Result<(), ErrorReport> {
    const WHAT: &str = "warden.register_issuer()";
    authorize(WHAT)?;
    crate::errors::ensure_writable(c"warden.register_issuer()");
    let issuer = issuer
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ProviderError::Invalid("issuer must not be NULL or empty".into()))?;
    let own = crate::gucs::string(&crate::gucs::JWT_ISSUER);
    if issuer == "warden" || own.as_deref() == Some(issuer) {
        return Err(ProviderError::Invalid(format!(
            "issuer \"{issuer}\" is the one warden's own HS256 tokens carry (warden.jwt_issuer)"
        ))
        .into());
    }
    let jwks = jwks
        .ok_or_else(|| ProviderError::Invalid("jwks must not be NULL".into()))?
        .0;
    let options = options.map_or_else(|| json!({}), |o| o.0);
    let parsed = crate::jwt::jwks::parse(&jwks).map_err(|e| ProviderError::Jwks {
        issuer: issuer.into(),
        reason: e.to_string(),
    })?;
    crate::jwt::jwks::parse_options(&options)
        .map_err(|e| ProviderError::Invalid(format!("options: {e}")))?;
    for note in &parsed.skipped {
        pgrx::notice!("warden: issuer \"{issuer}\": skipped {note}");
    }
    let all = jwks["keys"].as_array().cloned().unwrap_or_default();
    let kept: Vec<Value> = parsed.used.iter().map(|&i| all[i].clone()).collect();
    let stored = json!({ "keys": kept });
    let by = crate::context::current().map(|c| c.actor.into_string());
    let role = crate::context::current_role_name();
    privileged(|| {
        Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO warden.issuer_records (issuer, jwks, options, registered_at, registered_by, registered_by_role)
                 VALUES ($1, $2::text::jsonb, $3::text::jsonb, pg_catalog.now(), $4, $5)
                 ON CONFLICT (issuer) DO UPDATE
                    SET jwks = excluded.jwks, options = excluded.options, registered_at = excluded.registered_at,
                        registered_by = excluded.registered_by, registered_by_role = excluded.registered_by_role",
                None,
                &[
                    issuer.into(),
                    stored.to_string().into(),
                    options.to_string().into(),
                    by.into(),
                    role.as_str().into(),
                ],
            )
            .map(|_| ())
        })
    })?;
    crate::catalog::invalidate(c"issuer_records");
    let kids: Vec<Value> = parsed
        .keys
        .iter()
        .map(|k| json!({ "kid": k.kid, "alg": k.alg.as_str() }))
        .collect();
    record(
        "register_issuer",
        issuer,
        json!({ "keys": kids, "options": options, "skipped": parsed.skipped }),
    )?;
    Ok(())
}

/// Removes an identity provider: its tokens are refused from every session's next transaction.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn unregister_issuer(issuer: Option<&str>) -> Result<(), ErrorReport> {
    const WHAT: &str = "warden.unregister_issuer()";
    authorize(WHAT)?;
    crate::errors::ensure_writable(c"warden.unregister_issuer()");
    let issuer = issuer.ok_or_else(|| ProviderError::Invalid("issuer must not be NULL".into()))?;
    let n = privileged(|| {
        Spi::connect_mut(|c| {
            Ok(c.update(
                "DELETE FROM warden.issuer_records WHERE issuer = $1",
                None,
                &[issuer.into()],
            )?
            .len())
        })
    })?;
    if n == 0 {
        return Err(ProviderError::NotRegistered(issuer.into()).into());
    }
    crate::catalog::invalidate(c"issuer_records");
    record("unregister_issuer", issuer, json!({}))?;
    Ok(())
}

/// Sign-out everywhere: every token of `actor` issued before `issued_before` (default now) is
/// refused from the next transaction of every session. Called by the actor themself (every
/// tenant), by an admin-level context (the actor is signed out of that tenant only), or by
/// warden_admin or a superuser (every tenant). API keys are not touched. An audit event.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_tokens(
    actor: Option<&str>,
    issued_before: default!(Option<pgrx::datum::TimestampWithTimeZone>, "now()"),
) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.revoke_tokens()");
    let actor = actor
        .map(crate::types::ident::Ident::parse)
        .transpose()
        .map_err(|e| ProviderError::Invalid(format!("actor {e}")))?
        .ok_or_else(|| ProviderError::Invalid("actor must not be NULL".into()))?;
    let issued_before = issued_before
        .ok_or_else(|| ProviderError::Invalid("issued_before must not be NULL".into()))?;
    let future =
        Spi::get_one_with_args::<bool>("SELECT $1 > pg_catalog.now()", &[issued_before.into()])
            .map_err(|e| ProviderError::Internal(e.to_string()))?
            .unwrap_or(true);
    if future {
        return Err(ProviderError::Invalid(
            "issued_before must not be in the future: it revokes tokens already issued".into(),
        )
        .into());
    }
    let ctx = crate::context::current();
    let tenant: Option<String> = if authorize("warden.revoke_tokens()").is_ok() {
        None
    } else {
        match &ctx {
            Some(c) if c.actor.as_str() == actor.as_str() => None,
            Some(c) if c.level == crate::types::level::Level::Admin => {
                Some(c.tenant.as_str().to_owned())
            }
            _ => return Err(ProviderError::NotRevoker(actor.into_string()).into()),
        }
    };
    let by = ctx.as_ref().map(|c| c.actor.as_str().to_owned());
    let role = crate::context::current_role_name();
    privileged(|| {
        Spi::connect_mut(|c| {
            c.update(
                "INSERT INTO warden.token_revocations (actor, tenant, issued_before, revoked_by, revoked_by_role)
                 VALUES ($1, $2, $3, $4, $5)",
                None,
                &[
                    actor.as_str().into(),
                    tenant.clone().into(),
                    issued_before.into(),
                    by.into(),
                    role.as_str().into(),
                ],
            )
            .map(|_| ())
        })
    })?;
    crate::catalog::invalidate(c"token_revocations");
    if crate::audit::record::installed() {
        let ev = NewEvent::in_context("revoke_tokens", Status::Success)
            .resource("actor", Some(actor.as_str()))
            .changes(
                json!({ "issued_before": issued_before.to_iso_string(), "tenant": tenant })
                    .to_string(),
            );
        crate::audit::record(&ev).map_err(ProviderError::from)?;
    }
    Ok(())
}
