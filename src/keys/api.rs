//! The SQL API of API keys: `create_api_key`, `authenticate_key`, `revoke_api_key`, and the scope
//! checks policies call (`key_allows`, `tenant_with_scope`).
//!
//! A key's context is an ordinary warden context token (tenant, actor = the key's id, level) with
//! the key's scopes in the `warden_scopes` claim, minted by `authenticate_key` after the key's hash
//! is found: every reader, every node of a Citus cluster and every policy sees it exactly as a
//! JWT's context, and the scopes restrict the tables protected with a namespace and resource type.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde_json::json;

use super::format::{self, KeyFormatError};
use crate::audit::{NewEvent, Status};
use crate::context::{self, ContextError};
use crate::errors::SqlError;
use crate::jwt::{Claims, Scopes};
#[allow(unused_imports)]
use crate::planner;
use crate::scope::{self, Scope, ScopeError};
use crate::types::ident::Ident;
use crate::types::level::{Level, UnknownLevel};

/// At most one `last_used_at` write per key per this many seconds.
pub const TOUCH_EVERY: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("API key authentication failed: {0}")]
    Format(KeyFormatError),
    #[error("API key authentication failed: no key given")]
    NoKey,
    #[error("API key authentication failed: unknown key")]
    Unknown,
    #[error("API key authentication failed: key {0} was revoked")]
    Revoked(String),
    #[error("API key authentication failed: key {0} has expired")]
    Expired(String),
    #[error("{0} needs a warden context")]
    NoContext(&'static str),
    #[error("a context of level {creator} cannot create a key of level {wanted}")]
    LevelAboveCreator { creator: Level, wanted: Level },
    #[error("scope \"{0}\" is wider than the scopes of the creating key")]
    ScopeAboveCreator(String),
    #[error("scope \"{scope}\" allows {operation}, more than the key's level {level}")]
    ScopeAboveLevel {
        scope: String,
        operation: Level,
        level: Level,
    },
    #[error("{0}")]
    Scope(#[from] ScopeError),
    #[error("{0}")]
    Level(#[from] UnknownLevel),
    #[error("a key needs at least one scope")]
    NoScopes,
    #[error("{0} must not be NULL or empty")]
    Null(&'static str),
    #[error("expires_at must be in the future")]
    ExpiryPast,
    #[error("API key {0} does not exist in the current tenant")]
    NotFound(String),
    #[error("API key {0} is already revoked")]
    AlreadyRevoked(String),
    #[error("revoking API key {key} (level {level}) needs {needs} (current: {current})")]
    NotAllowed {
        key: String,
        level: Level,
        needs: String,
        current: String,
    },
    #[error("warden's API key table is not installed in this database")]
    NotInstalled,
    #[error("PostgreSQL's strong random source failed")]
    Random,
    #[error("{0}")]
    Context(#[from] ContextError),
    #[error("{0}")]
    Record(#[from] crate::audit::record::RecordError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl SqlError for KeyError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            KeyError::Format(_)
            | KeyError::NoKey
            | KeyError::Unknown
            | KeyError::Revoked(_)
            | KeyError::Expired(_) => ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            KeyError::NoContext(_)
            | KeyError::LevelAboveCreator { .. }
            | KeyError::ScopeAboveCreator(_)
            | KeyError::NotAllowed { .. } => ERRCODE_INSUFFICIENT_PRIVILEGE,
            KeyError::ScopeAboveLevel { .. }
            | KeyError::Scope(_)
            | KeyError::Level(_)
            | KeyError::NoScopes
            | KeyError::Null(_)
            | KeyError::ExpiryPast => ERRCODE_INVALID_PARAMETER_VALUE,
            KeyError::NotFound(_) => ERRCODE_UNDEFINED_OBJECT,
            KeyError::AlreadyRevoked(_) | KeyError::NotInstalled | KeyError::Record(_) => {
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            KeyError::Context(e) => e.sqlstate(),
            KeyError::Random | KeyError::Internal(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            KeyError::Format(_) | KeyError::NoKey | KeyError::Unknown => {
                "Pass the whole key exactly as warden.create_api_key() returned it (wdn_<id>_<secret>).".into()
            }
            KeyError::Revoked(_) | KeyError::Expired(_) => {
                "Ask an admin of the tenant for a new key: SELECT warden.create_api_key(...);".into()
            }
            KeyError::NoContext(_) => {
                "Authenticate first in the same transaction: SELECT warden.authenticate($1);".into()
            }
            KeyError::LevelAboveCreator { .. } => {
                "A key's level is at most its creator's; only admin level creates admin keys.".into()
            }
            KeyError::ScopeAboveCreator(_) => {
                "A key created under another key's context carries only scopes that key has.".into()
            }
            KeyError::ScopeAboveLevel { .. } => {
                "Use operations the key's level implies (read < write < delete < admin), or *.".into()
            }
            KeyError::Scope(_) | KeyError::NoScopes => {
                "Scopes are namespace:resource_type:operation, e.g. '{docs:*:read}'; '{*:*:*}' for everything the level allows.".into()
            }
            KeyError::Level(_) => "Use one of: read, write, delete, admin.".into(),
            KeyError::Null(_) => "SELECT warden.create_api_key('ci deploy', 'write', '{docs:*:write}');".into(),
            KeyError::ExpiryPast => "Pass a time in the future, or NULL for a key that does not expire.".into(),
            KeyError::NotFound(_) => "SELECT id, name, status FROM warden.api_keys;".into(),
            KeyError::AlreadyRevoked(_) => "Nothing to do: a revoked key stays revoked.".into(),
            KeyError::NotAllowed { .. } => {
                "Admin level revokes any key of its tenant; a key's creator (or the key itself) revokes keys up to its own level.".into()
            }
            KeyError::NotInstalled | KeyError::Record(_) => "ALTER EXTENSION warden UPDATE;".into(),
            KeyError::Context(e) => return e.hint(),
            KeyError::Random | KeyError::Internal(_) => return None,
        })
    }
}
crate::errors::sql_error!(KeyError);

const MISSING: &str =
    "warden's API key table is not installed in this database (ALTER EXTENSION warden UPDATE)";

/// Runs `f` as the owner of warden's key table, after the caller was authorized.
fn privileged<R>(f: impl FnOnce() -> Result<R, pgrx::spi::Error>) -> Result<R, KeyError> {
    if crate::catalog::warden_oid(c"api_key_records") == pg_sys::InvalidOid {
        return Err(KeyError::NotInstalled);
    }
    crate::catalog::as_owner_of(c"api_key_records", MISSING, || {
        f().map_err(|e| e.to_string())
    })
    .map_err(KeyError::Internal)
}

fn pg_uuid(u: &uuid::Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*u.as_bytes())
}

fn from_pg(u: &pgrx::Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*u.as_bytes())
}

/// A key's row, as authentication needs it.
struct Row {
    id: uuid::Uuid,
    public_id: String,
    tenant: Ident,
    level: String,
    scopes: Vec<String>,
    hash: Vec<u8>,
    expires_at: Option<i64>,
    revoked: bool,
    last_used_at: Option<i64>,
}

finfo_v1!(pg_finfo_warden_keys_changed);

/// The statement trigger on `warden.api_key_records`: any change (a key created, revoked, touched
/// by the worker, or edited by a superuser) invalidates every backend's cache of keys at commit.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_keys_changed(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = crate::audit::trigger::trigger_data(fcinfo, "warden._keys_changed()");
        pg_sys::CacheInvalidateRelcacheByRelid((*(*td).tg_relation).rd_id);
    }
    pg_sys::Datum::from(0usize)
}

/// Keys by hash.
type FoundKeys = HashMap<[u8; 32], std::rc::Rc<Row>>;

thread_local! {
    /// Keys found by their hash, valid while no change to the key table was seen (the relcache
    /// generation of warden's watched tables). Expiry is checked on every use.
    static FOUND: RefCell<(u64, FoundKeys)> = RefCell::new((0, HashMap::new()));
}

/// The key with hash `hash`, from this backend's cache or the table.
fn lookup(hash: &[u8; 32]) -> Result<Option<std::rc::Rc<Row>>, KeyError> {
    crate::catalog::watch_once(c"api_key_records");
    let generation = crate::catalog::generation();
    let hit = FOUND.with_borrow_mut(|(g, m)| {
        if *g != generation {
            *g = generation;
            m.clear();
        }
        m.get(hash).cloned()
    });
    if hit.is_some() {
        return Ok(hit);
    }
    let Some(row) = read(hash)? else {
        return Ok(None);
    };
    let row = std::rc::Rc::new(row);
    FOUND.with_borrow_mut(|(g, m)| {
        // an invalidation while reading leaves the row uncached
        if *g == crate::catalog::generation() {
            if m.len() >= 10_000 {
                m.clear();
            }
            m.insert(*hash, row.clone());
        }
    });
    Ok(Some(row))
}

fn read(hash: &[u8; 32]) -> Result<Option<Row>, KeyError> {
    privileged(|| {
        Spi::connect(|c| {
            let rows = c.select(
                "SELECT id, public_id, tenant::text, level, scopes, key_hash,
                        pg_catalog.floor(pg_catalog.date_part('epoch', expires_at))::int8,
                        revoked_at IS NOT NULL,
                        pg_catalog.floor(pg_catalog.date_part('epoch', last_used_at))::int8
                   FROM warden.api_key_records WHERE key_hash = $1",
                Some(1),
                &[hash.as_slice().into()],
            )?;
            let Some(r) = rows.into_iter().next() else {
                return Ok(None);
            };
            Ok(Some(Row {
                id: r
                    .get::<pgrx::Uuid>(1)?
                    .map(|u| from_pg(&u))
                    .unwrap_or_default(),
                public_id: r.get::<String>(2)?.unwrap_or_default(),
                tenant: match r.get::<String>(3)?.map(|t| Ident::parse(&t)) {
                    Some(Ok(t)) => t,
                    _ => return Ok(None),
                },
                level: r.get::<String>(4)?.unwrap_or_default(),
                scopes: r
                    .get::<Vec<Option<String>>>(5)?
                    .unwrap_or_default()
                    .into_iter()
                    .flatten()
                    .collect(),
                hash: r.get::<Vec<u8>>(6)?.unwrap_or_default(),
                expires_at: r.get::<i64>(7)?,
                revoked: r.get::<bool>(8)? == Some(true),
                last_used_at: r.get::<i64>(9)?,
            }))
        })
    })
}

/// A failed key authentication, recorded through the autonomous path (it survives the rollback
/// the error causes): the key's public id, and its tenant and id when the hash matched a key
/// (revoked or expired). Never the key.
fn audit_failure(e: &KeyError, public_id: Option<&str>, row: Option<&Row>) {
    let ev = NewEvent {
        tenant: row.map(|r| r.tenant.clone()),
        actor: row.map(|r| Ident::from_uuid(&r.id)),
        action: "authenticate".into(),
        resource_type: Some("api_key".into()),
        resource_id: public_id.map(|p| format!("{}{p}", format::PREFIX)),
        changes: Some(json!({ "reason": e.to_string(), "key_matched": row.is_some() }).to_string()),
        status: Status::Denied,
        context_extra: Some("\"via\":\"api_key\"".into()),
    };
    crate::audit::record_autonomous(&ev);
}

thread_local! {
    /// When this backend last asked the worker to record a key's use: so that a busy backend asks
    /// once a minute, not once per transaction, while the worker catches up.
    static TOUCHED: RefCell<HashMap<uuid::Uuid, i64>> = RefCell::new(HashMap::new());
}

/// Keeps `last_used_at` current without writing in the caller's transaction: at most once a
/// minute per key, the sealing worker is asked to write it (in a transaction of its own, which
/// writes only when the stored value is a minute old). Nothing happens on a hot standby or
/// without shared_preload_libraries (the column then stays as it was).
fn touch(row: &Row, now: i64) {
    if row.last_used_at.is_some_and(|t| now - t < TOUCH_EVERY) {
        return;
    }
    let due = TOUCHED.with_borrow_mut(|m| {
        if m.len() > 10_000 {
            m.clear();
        }
        match m.get(&row.id) {
            Some(t) if now - t < TOUCH_EVERY => false,
            _ => {
                m.insert(row.id, now);
                true
            }
        }
    });
    // SAFETY: reads whether this server is a standby.
    if due && !unsafe { pg_sys::RecoveryInProgress() } {
        crate::audit::worker::touch_key(row.id.as_bytes(), crate::audit::record::now());
    }
}

/// Authenticates an API key and makes its tenant, id (as actor), level and scopes this
/// transaction's context.
#[pg_extern(volatile, parallel_unsafe)]
fn authenticate_key(key: Option<&str>) -> Result<(), ErrorReport> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        audit_failure(&KeyError::NoKey, None, None);
        return Err(KeyError::NoKey.into());
    };
    // an API key is a bearer credential: not over a connection warden.require_tls refuses
    context::require_tls(None)?;
    let public_id = match format::parse(key) {
        Ok(id) => id,
        Err(e) => {
            let e = KeyError::Format(e);
            audit_failure(&e, None, None);
            return Err(e.into());
        }
    };
    let hash = format::hash(key);
    let row = match lookup(&hash) {
        Ok(Some(r))
            if r.hash.len() == 32
                && format::ct_eq(&hash, r.hash[..].try_into().unwrap_or(&[0; 32])) =>
        {
            r
        }
        Ok(_) => {
            audit_failure(&KeyError::Unknown, Some(public_id), None);
            return Err(KeyError::Unknown.into());
        }
        Err(e) => return Err(e.into()),
    };
    let now = context::now_secs();
    let display = format!("{}{}", format::PREFIX, row.public_id);
    let refusal = if row.revoked {
        Some(KeyError::Revoked(display.clone()))
    } else if row.expires_at.is_some_and(|t| t <= now) {
        Some(KeyError::Expired(display.clone()))
    } else {
        None
    };
    if let Some(e) = refusal {
        audit_failure(&e, Some(public_id), Some(&row));
        return Err(e.into());
    }
    let level: Level = row.level.parse().map_err(KeyError::Level)?;
    let scopes = scope::parse_all(&row.scopes).map_err(KeyError::Scope)?;
    let ttl = i64::from(crate::gucs::CONTEXT_TTL.get());
    let claims = Claims {
        tenant: row.tenant.clone(),
        actor: Ident::from_uuid(&row.id),
        level,
        exp: row.expires_at.map_or(now + ttl, |t| t.min(now + ttl)),
        nbf: None,
        iat: Some(now),
        scopes: Some(Scopes::from(scopes)),
    };
    context::install_claims(claims, now)?;
    touch(&row, now);
    if crate::gucs::AUDIT_AUTHENTICATION.get() == crate::gucs::AuditAuthentication::All
        && crate::audit::record::installed()
    {
        let ev = NewEvent::in_context("authenticate", Status::Success)
            .resource("api_key", Some(&display))
            .changes(json!({ "level": level.as_str(), "via": "api_key" }).to_string());
        crate::audit::record(&ev).map_err(KeyError::Record)?;
    }
    Ok(())
}

/// Creates an API key for the current tenant and returns it; the plaintext exists only in this
/// result. The key's level is at most the caller's, its scopes within the caller's.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn create_api_key(
    name: Option<&str>,
    level: Option<&str>,
    scopes: Option<Vec<Option<String>>>,
    expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> Result<String, ErrorReport> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or(KeyError::Null("name"))?;
    let level: Level = level
        .ok_or(KeyError::Null("level"))?
        .parse()
        .map_err(KeyError::Level)?;
    let wanted: Vec<String> = scopes
        .ok_or(KeyError::Null("scopes"))?
        .into_iter()
        .flatten()
        .collect();
    if wanted.is_empty() {
        return Err(KeyError::NoScopes.into());
    }
    let wanted = scope::parse_all(&wanted).map_err(KeyError::Scope)?;
    crate::errors::ensure_writable(c"warden.create_api_key()");
    let ctx = context::current().ok_or(KeyError::NoContext("warden.create_api_key()"))?;
    check_grant(&ctx, level, &wanted)?;
    if let Some(at) = expires_at {
        let future = Spi::get_one_with_args::<bool>(
            "SELECT $1 OPERATOR(pg_catalog.>) pg_catalog.now()",
            &[at.into()],
        )
        .map_err(|e| KeyError::Internal(e.to_string()))?;
        if future != Some(true) {
            return Err(KeyError::ExpiryPast.into());
        }
    }
    let mut random = [0u8; format::RANDOM_BYTES];
    // SAFETY: fills a buffer of the given length.
    if !unsafe { pg_sys::pg_strong_random(random.as_mut_ptr().cast(), random.len()) } {
        return Err(KeyError::Random.into());
    }
    let new = format::mint(&random);
    random.fill(0);
    let texts: Vec<String> = wanted.iter().map(Scope::to_string).collect();
    let id = privileged(|| {
        Spi::connect_mut(|c| {
            let t = crate::catalog::id_cast(c"api_key_records", c"tenant");
            c.update(
                &format!("INSERT INTO warden.api_key_records
                        (id, public_id, tenant, name, level, scopes, key_hash, created_by, expires_at)
                 VALUES (pg_catalog.gen_random_uuid(), $1, $2{t}, $3, $4, $5, $6, $7{t}, $8)
                 RETURNING id"),
                Some(1),
                &[
                    new.id.as_str().into(),
                    ctx.tenant.as_str().into(),
                    name.into(),
                    level.as_str().into(),
                    texts.clone().into(),
                    new.hash.as_slice().into(),
                    ctx.actor.as_str().into(),
                    expires_at.into(),
                ],
            )?
            .first()
            .get_one::<pgrx::Uuid>()
        })
    })?
    .ok_or_else(|| KeyError::Internal("the new key has no id".into()))?;
    if crate::audit::record::installed() {
        let ev = NewEvent::in_context("create_api_key", Status::Success)
            .resource("api_key", Some(&id.to_string()))
            .changes(
                json!({
                    "name": name,
                    "display_prefix": new.display_prefix,
                    "level": level.as_str(),
                    "scopes": texts,
                    "expires_at": expires_at.map(|t| t.to_iso_string()),
                })
                .to_string(),
            );
        crate::audit::record(&ev).map_err(KeyError::Record)?;
    }
    Ok(new.plaintext)
}

/// A key may not carry more than its creator's context: a level the creator's implies, scopes
/// the creator's scopes cover (a JWT context has none: every scope), and no scope whose operation
/// the key's own level does not imply.
fn check_grant(ctx: &Claims, level: Level, wanted: &[Scope]) -> Result<(), KeyError> {
    if !ctx.level.implies(level) {
        return Err(KeyError::LevelAboveCreator {
            creator: ctx.level,
            wanted: level,
        });
    }
    if let Some(held) = &ctx.scopes {
        if let Some(s) = scope::first_uncovered(held, wanted) {
            return Err(KeyError::ScopeAboveCreator(s.to_string()));
        }
    }
    for s in wanted {
        if let Some(op) = s.operation {
            if !level.implies(op) {
                return Err(KeyError::ScopeAboveLevel {
                    scope: s.to_string(),
                    operation: op,
                    level,
                });
            }
        }
    }
    Ok(())
}

/// Revokes an API key of the current tenant. Admin level revokes any; otherwise the key's creator,
/// or the key itself, with a level at least the key's.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn revoke_api_key(
    id: Option<pgrx::Uuid>,
    reason: default!(Option<&str>, "NULL"),
) -> Result<(), ErrorReport> {
    let id = id.ok_or(KeyError::Null("id"))?;
    crate::errors::ensure_writable(c"warden.revoke_api_key()");
    let ctx = context::current().ok_or(KeyError::NoContext("warden.revoke_api_key()"))?;
    let row = privileged(|| {
        Spi::connect(|c| {
            let rows = c.select(
                "SELECT tenant::text, level, created_by::text, revoked_at IS NOT NULL, public_id
                   FROM warden.api_key_records WHERE id = $1",
                Some(1),
                &[id.into()],
            )?;
            match rows.into_iter().next() {
                None => Ok(None),
                Some(r) => Ok(Some((
                    r.get::<String>(1)?,
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get::<String>(3)?,
                    r.get::<bool>(4)? == Some(true),
                    r.get::<String>(5)?.unwrap_or_default(),
                ))),
            }
        })
    })?;
    let key = from_pg(&id);
    let Some((Some(tenant), level, created_by, revoked, public_id)) = row else {
        return Err(KeyError::NotFound(key.to_string()).into());
    };
    if tenant != ctx.tenant.as_str() {
        return Err(KeyError::NotFound(key.to_string()).into());
    }
    let level: Level = level.parse().map_err(KeyError::Level)?;
    let own = created_by.as_deref() == Some(ctx.actor.as_str()) || Some(key) == ctx.actor.as_uuid();
    if !(ctx.level == Level::Admin || (own && ctx.level.implies(level))) {
        return Err(KeyError::NotAllowed {
            key: format!("{}{public_id}", format::PREFIX),
            level,
            needs: if level == Level::Admin {
                "admin level".into()
            } else {
                format!("admin level, or its creator with level {level} or higher")
            },
            current: format!("{} as {}", ctx.level, ctx.actor),
        }
        .into());
    }
    if revoked {
        return Err(KeyError::AlreadyRevoked(format!("{}{public_id}", format::PREFIX)).into());
    }
    privileged(|| {
        Spi::connect_mut(|c| {
            let t = crate::catalog::id_cast(c"api_key_records", c"tenant");
            c.update(
                &format!(
                    "UPDATE warden.api_key_records
                    SET revoked_at = pg_catalog.now(), revoked_by = $2{t}, revoke_reason = $3
                  WHERE id = $1"
                ),
                None,
                &[id.into(), ctx.actor.as_str().into(), reason.into()],
            )
            .map(|_| ())
        })
    })?;
    if crate::audit::record::installed() {
        let ev = NewEvent::in_context("revoke_api_key", Status::Success)
            .resource("api_key", Some(&key.to_string()))
            .changes(json!({ "reason": reason, "level": level.as_str() }).to_string());
        crate::audit::record(&ev).map_err(KeyError::Record)?;
    }
    Ok(())
}

/// Revokes every active key `actor` created, in every tenant (`warden.delete_account`). Returns
/// how many; 0 in a database whose warden SQL has no keys.
pub fn revoke_created_by(actor: &Ident, by: &Ident) -> Result<i64, KeyError> {
    if crate::catalog::warden_oid(c"api_key_records") == pg_sys::InvalidOid {
        return Ok(0);
    }
    privileged(|| {
        Spi::connect_mut(|c| {
            let t = crate::catalog::id_cast(c"api_key_records", c"tenant");
            let n = c
                .update(
                    &format!(
                        "WITH r AS (UPDATE warden.api_key_records
                                   SET revoked_at = pg_catalog.now(), revoked_by = $2{t},
                                       revoke_reason = 'account deleted'
                                 WHERE created_by = $1{t} AND revoked_at IS NULL RETURNING 1)
                     SELECT count(*)::int8 FROM r"
                    ),
                    Some(1),
                    &[actor.as_str().into(), by.as_str().into()],
                )?
                .first()
                .get_one::<i64>()?;
            Ok(n.unwrap_or(0))
        })
    })
}

/// [`revoke_created_by`] as `delete_account` asks for it (`registry::account_deleted`).
fn on_account_deleted(
    actor: &Ident,
    by: &Ident,
) -> Result<(&'static str, serde_json::Value), String> {
    let n = revoke_created_by(actor, by).map_err(|e| e.to_string())?;
    Ok(("api_keys_revoked", n.into()))
}

/// Registers what API keys provide to the other capabilities, and watches the key table (from
/// `_PG_init`).
pub fn init() {
    crate::catalog::watch_tables(&[c"api_key_records"]);
    crate::catalog::registry::provide_account_deleted(on_account_deleted);
}

fn op(operation: &str) -> Result<Level, KeyError> {
    operation.parse().map_err(KeyError::Level)
}

/// Whether the context may perform `operation` on resources of `resource_type` in `namespace`:
/// its level implies the operation and, for an API key, one of its scopes allows it. False
/// without a context.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn key_allows(namespace: &str, resource_type: &str, operation: &str) -> Result<bool, ErrorReport> {
    let operation = op(operation)?;
    Ok(context::current().is_some_and(|c| allows(&c, namespace, resource_type, operation)))
}

fn allows(c: &Claims, namespace: &str, resource_type: &str, operation: Level) -> bool {
    c.level.implies(operation)
        && c.scopes
            .as_ref()
            .is_none_or(|s| scope::set_allows(s, namespace, resource_type, operation))
}

/// The current tenant when the context may perform `level` on `namespace`:`resource_type`, else
/// NULL: what the policies of a table protected with a namespace and resource type call.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_scope(
    namespace: &str,
    resource_type: &str,
    level: &str,
) -> Result<Option<pgrx::Uuid>, ErrorReport> {
    Ok(scoped_tenant(namespace, resource_type, level)?
        .and_then(|t| t.as_uuid())
        .map(|u| pg_uuid(&u)))
}

/// [`tenant_with_scope`] for a text or varchar tenant column.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_scope_text(
    namespace: &str,
    resource_type: &str,
    level: &str,
) -> Result<Option<String>, ErrorReport> {
    Ok(scoped_tenant(namespace, resource_type, level)?.map(Ident::into_string))
}

/// [`tenant_with_scope`] for a bigint tenant column (NULL unless canonical decimal).
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_scope_bigint(
    namespace: &str,
    resource_type: &str,
    level: &str,
) -> Result<Option<i64>, ErrorReport> {
    Ok(scoped_tenant(namespace, resource_type, level)?.and_then(|t| t.as_i64()))
}

/// [`tenant_with_scope`] for an integer tenant column.
#[pg_extern(stable, parallel_restricted, support = planner::_context_support)]
fn tenant_with_scope_int(
    namespace: &str,
    resource_type: &str,
    level: &str,
) -> Result<Option<i32>, ErrorReport> {
    Ok(scoped_tenant(namespace, resource_type, level)?.and_then(|t| t.as_i32()))
}

fn scoped_tenant(
    namespace: &str,
    resource_type: &str,
    level: &str,
) -> Result<Option<Ident>, KeyError> {
    let level = op(level)?;
    Ok(context::current()
        .filter(|c| allows(c, namespace, resource_type, level))
        .map(|c| c.tenant))
}

/// `warden.key_stale_after` in seconds, for the `warden.stale_api_keys` view.
#[pg_extern(stable, parallel_safe)]
fn _key_stale_after() -> f64 {
    f64::from(crate::gucs::KEY_STALE_AFTER.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(level: Level, scopes: Option<&[&str]>) -> Claims {
        Claims {
            tenant: Ident::parse("1").unwrap(),
            actor: Ident::parse("2").unwrap(),
            level,
            exp: 0,
            nbf: None,
            iat: None,
            scopes: scopes.map(|s| Scopes::from(scope::parse_all(s).unwrap())),
        }
    }

    fn s(list: &[&str]) -> Vec<Scope> {
        scope::parse_all(list).unwrap()
    }

    #[test]
    fn a_write_context_cannot_mint_an_admin_key() {
        let e = check_grant(&claims(Level::Write, None), Level::Admin, &s(&["*:*:*"]));
        assert!(matches!(e, Err(KeyError::LevelAboveCreator { .. })));
        assert!(check_grant(&claims(Level::Admin, None), Level::Admin, &s(&["*:*:*"])).is_ok());
    }

    #[test]
    fn a_key_cannot_widen_the_scopes_of_the_key_that_creates_it() {
        let creator = claims(Level::Write, Some(&["docs:*:write"]));
        assert!(check_grant(&creator, Level::Read, &s(&["docs:invoice:read"])).is_ok());
        for wider in ["*:*:read", "docs_admin:*:read", "billing:invoice:read"] {
            assert!(
                matches!(
                    check_grant(&creator, Level::Read, &s(&[wider])),
                    Err(KeyError::ScopeAboveCreator(_))
                ),
                "{wider}"
            );
        }
    }

    #[test]
    fn a_scope_may_not_ask_for_more_than_the_key_level() {
        let e = check_grant(
            &claims(Level::Admin, None),
            Level::Read,
            &s(&["docs:*:write"]),
        );
        assert!(matches!(e, Err(KeyError::ScopeAboveLevel { .. })));
        assert!(check_grant(&claims(Level::Admin, None), Level::Read, &s(&["docs:*:*"])).is_ok());
    }

    #[test]
    fn scopes_restrict_keys_and_levels_restrict_everyone() {
        let key = claims(Level::Write, Some(&["docs:*:read"]));
        assert!(allows(&key, "docs", "invoice", Level::Read));
        assert!(!allows(&key, "docs", "invoice", Level::Write));
        assert!(!allows(&key, "docs_admin", "invoice", Level::Read));
        let user = claims(Level::Write, None);
        assert!(allows(&user, "anything", "at_all", Level::Write));
        assert!(!allows(&user, "anything", "at_all", Level::Delete));
        let nothing = claims(Level::Admin, Some(&[]));
        assert!(!allows(&nothing, "docs", "invoice", Level::Read));
    }
}
