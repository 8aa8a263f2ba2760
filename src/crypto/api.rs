//! The SQL API of encryption at rest: tenant keys (`create_key`, `rotate_key`, `destroy_key`),
//! `encrypt` / `decrypt` / `reencrypt`, tenant secrets, and per-subject keys for crypto-shredding.
//!
//! Every key belongs to a tenant and is used only under a context of that tenant. Data keys are
//! unwrapped with the master key (the file named by `warden.master_key_file`) when first used in a
//! transaction and kept in this backend's memory for that transaction only, so a key destroyed or
//! rotated by a committed transaction is seen by the next transaction of every session.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde_json::json;

use super::envelope::{self, EnvelopeError, KeyRef, NONCE_LEN};
use crate::audit::{NewEvent, Status};
use crate::context;
use crate::errors::SqlError;
use crate::jwt::Claims;
use crate::types::ident::Ident;
use crate::types::level::Level;

/// The key `put_secret` encrypts a tenant's secrets with.
const SECRETS_KEY: &str = "warden:secrets";
/// The prefix of per-subject key names (`warden.subject_key`).
const SUBJECT_PREFIX: &str = "subject:";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{0} needs a warden context")]
    NoContext(&'static str),
    #[error("{what} needs {needs} level (current: {current})")]
    NotAllowed {
        what: &'static str,
        needs: Level,
        current: Level,
    },
    #[error("the ciphertext was made with a key of another tenant")]
    OtherTenant,
    #[error("warden.master_key_file is not set")]
    NoMasterKey,
    #[error("the master key cannot be read: {0}")]
    MasterKey(String),
    #[error("key \"{0}\" does not exist in the current tenant")]
    NoSuchKey(String),
    #[error("key \"{0}\" already exists in the current tenant")]
    KeyExists(String),
    #[error("key names starting with \"{0}\" are warden's own")]
    Reserved(&'static str),
    #[error(
        "the ciphertext cannot be decrypted: version {version} of key \"{name}\" was destroyed"
    )]
    Destroyed { name: String, version: u32 },
    #[error("key \"{0}\" was destroyed (crypto-shredded): nothing more is encrypted with it")]
    KeyDestroyed(String),
    #[error("the ciphertext names a key this database does not have")]
    UnknownKey,
    #[error("{0}: this Citus node has no copy of the coordinator's keyring")]
    NotReplicated(String),
    #[error("key \"{name}\" cannot be created here: {reason}")]
    CreateOnCitus { name: String, reason: String },
    #[error("{0}")]
    Envelope(EnvelopeError),
    #[error("{0} must not be NULL or empty")]
    Null(&'static str),
    #[error("secret \"{0}\" does not exist in the current tenant")]
    NoSecret(String),
    #[error("the decrypted value is not UTF-8 text")]
    NotText,
    #[error("the read of secret \"{0}\" could not be recorded in the audit trail")]
    Unrecorded(String),
    #[error("warden's keyring is not installed in this database")]
    NotInstalled,
    #[error("PostgreSQL's strong random source failed")]
    Random,
    #[error("{0}")]
    Record(#[from] crate::audit::record::RecordError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl SqlError for CryptoError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            CryptoError::NoContext(_)
            | CryptoError::NotAllowed { .. }
            | CryptoError::OtherTenant => ERRCODE_INSUFFICIENT_PRIVILEGE,
            CryptoError::NoMasterKey
            | CryptoError::MasterKey(_)
            | CryptoError::Destroyed { .. }
            | CryptoError::KeyDestroyed(_)
            | CryptoError::Unrecorded(_)
            | CryptoError::NotInstalled
            | CryptoError::Record(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            CryptoError::NotReplicated(_) | CryptoError::CreateOnCitus { .. } => {
                ERRCODE_FEATURE_NOT_SUPPORTED
            }
            CryptoError::NoSuchKey(_) | CryptoError::NoSecret(_) => ERRCODE_UNDEFINED_OBJECT,
            CryptoError::KeyExists(_) => ERRCODE_DUPLICATE_OBJECT,
            CryptoError::Reserved(_)
            | CryptoError::UnknownKey
            | CryptoError::Envelope(_)
            | CryptoError::Null(_)
            | CryptoError::NotText => ERRCODE_INVALID_PARAMETER_VALUE,
            CryptoError::Random | CryptoError::Internal(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            CryptoError::NotReplicated(_) => {
                "With Citus, replicate the keyring to every node so that distributed queries can encrypt and decrypt on the workers: as a superuser on the coordinator, SELECT * FROM warden.citus_setup(); (every node needs the same warden.master_key_file contents; README, \"Running on Citus\").".into()
            }
            CryptoError::CreateOnCitus { name, .. } => format!(
                "With Citus, keys are created on the coordinator, in a statement that is not a distributed query running on the workers (a key created on first use included), and the workers see it once it commits: create it first, in a transaction of its own, e.g. SELECT warden.encrypt('x'::bytea, '{name}'); (README, \"Running on Citus\")."
            ),
            CryptoError::NoContext(_) => "Authenticate first: SELECT warden.authenticate($1);".into(),
            CryptoError::NotAllowed { needs, .. } => format!(
                "Authenticate with a context of level {needs} (or higher) in the tenant: keys and secrets are written by admin level, read by read level."
            ),
            CryptoError::OtherTenant => "A tenant decrypts only what was encrypted under its own keys.".into(),
            CryptoError::NoMasterKey | CryptoError::MasterKey(_) => {
                "A superuser puts 64 hex digits (32 random bytes) in a file only the server can read and sets warden.master_key_file to its path (ALTER SYSTEM SET ...; SELECT pg_reload_conf();).".into()
            }
            CryptoError::NoSuchKey(name) => format!("An admin creates it: SELECT warden.create_key('{name}');"),
            CryptoError::KeyExists(name) => format!("Rotate it instead: SELECT warden.rotate_key('{name}');"),
            CryptoError::Reserved(_) => "Choose another name; subject keys come from warden.subject_key(subject).".into(),
            CryptoError::Destroyed { .. } | CryptoError::KeyDestroyed(_) => {
                "The data was crypto-shredded (warden.erase_subject or warden.destroy_key): it is gone on purpose.".into()
            }
            CryptoError::UnknownKey => "Decrypt in the database (and tenant) that encrypted it.".into(),
            CryptoError::Envelope(EnvelopeError::Authentication) => {
                "Pass the same aad as at encryption (e.g. the row's id); a ciphertext moved to another row does not decrypt.".into()
            }
            CryptoError::Envelope(_) => "Pass a value that warden.encrypt() returned.".into(),
            CryptoError::Null(_) => "SELECT warden.encrypt(data, 'key name', aad);".into(),
            CryptoError::NoSecret(_) => "SELECT name FROM warden.secret_names;".into(),
            CryptoError::NotText => "Use warden.decrypt() for binary data.".into(),
            CryptoError::Unrecorded(_) => "SELECT * FROM warden.audit_queue_status(); warden must be in shared_preload_libraries.".into(),
            CryptoError::NotInstalled | CryptoError::Record(_) => "ALTER EXTENSION warden UPDATE;".into(),
            CryptoError::Random | CryptoError::Internal(_) => return None,
        })
    }
}
crate::errors::sql_error!(CryptoError);

thread_local! {
    /// The master key read from `warden.master_key_file`, with the path it came from.
    static MASTER: RefCell<Option<(String, [u8; 32])>> = const { RefCell::new(None) };
    /// Data keys unwrapped in the current transaction (local transaction id, by key and version).
    static DATA_KEYS: RefCell<(pg_sys::LocalTransactionId, KeyCache)> =
        RefCell::new((0, HashMap::new()));
}

/// Unwrapped data keys by key id and version.
type KeyCache = HashMap<([u8; 16], u32), Unwrapped>;

#[derive(Clone)]
struct Unwrapped {
    tenant: Ident,
    name: String,
    key: Option<[u8; 32]>,
}

/// Parses a master key file: 64 hex digits, surrounding whitespace allowed.
fn parse_master(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the file must hold 64 hex digits (32 bytes)".into());
    }
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    if k.iter().all(|b| *b == 0) {
        return Err("the master key is all zeros".into());
    }
    Ok(k)
}

fn master_key() -> Result<[u8; 32], CryptoError> {
    let path =
        crate::gucs::string(&crate::gucs::MASTER_KEY_FILE).ok_or(CryptoError::NoMasterKey)?;
    if let Some(k) = MASTER.with_borrow(|m| m.as_ref().filter(|(p, _)| *p == path).map(|(_, k)| *k))
    {
        return Ok(k);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CryptoError::MasterKey(format!("{path}: {e}")))?;
    let key = parse_master(&text).map_err(|e| CryptoError::MasterKey(format!("{path}: {e}")))?;
    MASTER.set(Some((path, key)));
    Ok(key)
}

fn random<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    // SAFETY: fills a buffer of the given length.
    if unsafe { pg_sys::pg_strong_random(b.as_mut_ptr().cast(), N) } {
        Ok(b)
    } else {
        Err(CryptoError::Random)
    }
}

const MISSING: &str =
    "warden's keyring is not installed in this database (ALTER EXTENSION warden UPDATE)";

/// Where the keyring is read on this node: with Citus, the node's own copy once
/// `warden.citus_setup()` replicated it (`catalog::citus`).
fn keyring() -> Result<String, CryptoError> {
    crate::catalog::citus::read_from(c"keyring").map_err(CryptoError::Internal)
}

/// `e` (a key not found), or, on a Citus node that has no copy of the keyring, the refusal that
/// says how to replicate it (0A000): a worker running a distributed query does not guess.
fn missing(e: CryptoError) -> CryptoError {
    if crate::gucs::citus_loaded()
        && !crate::catalog::citus::is_replicated(c"keyring").unwrap_or(false)
        && crate::catalog::citus_distributed(None).is_ok_and(|d| !d.is_empty())
    {
        return CryptoError::NotReplicated(e.to_string());
    }
    e
}

fn privileged<R>(f: impl FnOnce() -> Result<R, pgrx::spi::Error>) -> Result<R, CryptoError> {
    if crate::catalog::warden_oid(c"keyring") == pg_sys::InvalidOid {
        return Err(CryptoError::NotInstalled);
    }
    crate::catalog::as_owner_of(c"keyring", MISSING, || f().map_err(|e| e.to_string()))
        .map_err(CryptoError::Internal)
}

fn pg_uuid(b: &[u8; 16]) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*b)
}

fn require(what: &'static str, level: Option<Level>) -> Result<Claims, CryptoError> {
    let c = context::current().ok_or(CryptoError::NoContext(what))?;
    if let Some(needs) = level {
        if !c.level.implies(needs) {
            return Err(CryptoError::NotAllowed {
                what,
                needs,
                current: c.level,
            });
        }
    }
    Ok(c)
}

fn check_name(name: Option<&str>) -> Result<&str, CryptoError> {
    let name = name
        .filter(|n| !n.trim().is_empty())
        .ok_or(CryptoError::Null("key_name"))?;
    if name.starts_with("warden:") {
        return Err(CryptoError::Reserved("warden:"));
    }
    Ok(name)
}

thread_local! {
    /// The newest version of each key name used in the current transaction (local transaction id,
    /// by tenant and name): one keyring lookup per name and transaction.
    static NEWEST: RefCell<(pg_sys::LocalTransactionId, NewestCache)> = RefCell::new((0, HashMap::new()));
}

/// Newest key versions by tenant and name.
type NewestCache = HashMap<(Ident, String), (KeyRef, bool)>;

/// The newest version of key `name` of `tenant`: its reference, and whether it is destroyed.
fn newest(tenant: &Ident, name: &str) -> Result<Option<(KeyRef, bool)>, CryptoError> {
    let lxid = context::local_xid();
    let hit = NEWEST.with_borrow_mut(|(x, m)| {
        if *x != lxid {
            *x = lxid;
            m.clear();
        }
        m.get(&(tenant.clone(), name.to_owned())).copied()
    });
    if hit.is_some() {
        return Ok(hit);
    }
    let found = read_newest(tenant, name)?;
    if let Some(f) = found {
        NEWEST.with_borrow_mut(|(_, m)| m.insert((tenant.clone(), name.to_owned()), f));
    }
    Ok(found)
}

fn read_newest(tenant: &Ident, name: &str) -> Result<Option<(KeyRef, bool)>, CryptoError> {
    let keyring = keyring()?;
    privileged(|| {
        Spi::connect(|c| {
            let t = crate::catalog::id_cast(c"keyring", c"tenant");
            let rows = c.select(
                &format!(
                    "SELECT id, version, wrapped IS NULL FROM {keyring} k
                      WHERE tenant = $1{t} AND name = $2 ORDER BY version DESC LIMIT 1"
                ),
                Some(1),
                &[tenant.as_str().into(), name.into()],
            )?;
            let Some(r) = rows.into_iter().next() else {
                return Ok(None);
            };
            let id = r
                .get::<pgrx::Uuid>(1)?
                .map(|u| *u.as_bytes())
                .unwrap_or([0; 16]);
            let version = r.get::<i32>(2)?.unwrap_or(0);
            Ok(Some((
                KeyRef {
                    id,
                    version: u32::try_from(version).unwrap_or(0),
                },
                r.get::<bool>(3)? == Some(true),
            )))
        })
    })
}

/// The unwrapped key `r` names (None when it was destroyed), from this transaction's cache.
fn data_key(r: KeyRef) -> Result<Option<Unwrapped>, CryptoError> {
    let lxid = context::local_xid();
    let hit = DATA_KEYS.with_borrow_mut(|(x, m)| {
        if *x != lxid {
            *x = lxid;
            m.clear();
        }
        m.get(&(r.id, r.version)).cloned()
    });
    if hit.is_some() {
        return Ok(hit);
    }
    let keyring = keyring()?;
    let row = privileged(|| {
        Spi::connect(|c| {
            let rows = c.select(
                &format!("SELECT tenant::text, name, wrapped FROM {keyring} k WHERE id = $1 AND version = $2"),
                Some(1),
                &[pg_uuid(&r.id).into(), (r.version as i32).into()],
            )?;
            let Some(row) = rows.into_iter().next() else {
                return Ok(None);
            };
            Ok(Some((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<Vec<u8>>(3)?,
            )))
        })
    })?;
    let Some((tenant, name, wrapped)) = row else {
        return Ok(None);
    };
    let tenant = Ident::parse(&tenant)
        .map_err(|e| CryptoError::Internal(format!("the keyring names a tenant that {e}")))?;
    let key = match wrapped {
        None => None,
        Some(w) => Some(
            envelope::unwrap(&master_key()?, &w, r, &tenant).map_err(|e| {
                CryptoError::MasterKey(format!(
                    "version {} of key \"{name}\" does not unwrap with the configured master key ({e})",
                    r.version
                ))
            })?,
        ),
    };
    let u = Unwrapped { tenant, name, key };
    DATA_KEYS.with_borrow_mut(|(_, m)| m.insert((r.id, r.version), u.clone()));
    Ok(Some(u))
}

fn forget_cached_keys() {
    DATA_KEYS.with_borrow_mut(|(x, m)| {
        *x = 0;
        m.clear();
    });
    NEWEST.with_borrow_mut(|(x, m)| {
        *x = 0;
        m.clear();
    });
}

/// Adds version `version` of key `name` (id `id`) for `tenant`: a fresh random data key, wrapped.
fn add_version(
    tenant: &Ident,
    name: &str,
    id: [u8; 16],
    version: u32,
    by: &Ident,
) -> Result<(), CryptoError> {
    let master = master_key()?;
    let mut dk = random::<32>()?;
    let r = KeyRef { id, version };
    let wrapped = envelope::wrap(&master, &dk, r, tenant, &random::<NONCE_LEN>()?);
    dk.fill(0);
    privileged(|| {
        Spi::connect_mut(|c| {
            let t = crate::catalog::id_cast(c"keyring", c"tenant");
            c.update(
                &format!(
                    "INSERT INTO warden.keyring (id, version, tenant, name, wrapped, created_by)
                     VALUES ($1, $2, $3{t}, $4, $5, $6{t})"
                ),
                None,
                &[
                    pg_uuid(&id).into(),
                    (version as i32).into(),
                    tenant.as_str().into(),
                    name.into(),
                    wrapped.into(),
                    by.as_str().into(),
                ],
            )
            .map(|_| ())
        })
    })
    .map_err(|e| match e {
        // with Citus the keyring is a reference table: a query on a shard cannot write it
        CryptoError::Internal(reason) if crate::gucs::citus_loaded() => {
            CryptoError::CreateOnCitus {
                name: name.to_owned(),
                reason,
            }
        }
        e => e,
    })?;
    forget_cached_keys();
    Ok(())
}

fn new_id() -> Result<[u8; 16], CryptoError> {
    Ok(*uuid::Builder::from_random_bytes(random::<16>()?)
        .into_uuid()
        .as_bytes())
}

fn audit(action: &str, name: &str, changes: serde_json::Value) -> Result<(), CryptoError> {
    if crate::audit::record::installed() {
        let ev = NewEvent::in_context(action, Status::Success)
            .resource("key", Some(name))
            .changes(changes.to_string());
        crate::audit::record(&ev)?;
    }
    Ok(())
}

fn create(tenant: &Ident, name: &str, by: &Ident) -> Result<KeyRef, CryptoError> {
    let id = new_id()?;
    add_version(tenant, name, id, 1, by)?;
    Ok(KeyRef { id, version: 1 })
}

/// Creates key `key_name` for the current tenant (admin level). Returns its id.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn create_key(key_name: Option<&str>) -> Result<pgrx::Uuid, ErrorReport> {
    crate::errors::ensure_writable(c"warden.create_key()");
    let c = require("warden.create_key()", Some(Level::Admin))?;
    let name = check_name(key_name)?;
    if name.starts_with(SUBJECT_PREFIX) {
        return Err(CryptoError::Reserved(SUBJECT_PREFIX).into());
    }
    let tenant = c.tenant.clone();
    if newest(&tenant, name)?.is_some() {
        return Err(CryptoError::KeyExists(name.into()).into());
    }
    let r = create(&tenant, name, &c.actor)?;
    audit("create_key", name, json!({ "version": 1 }))?;
    Ok(pg_uuid(&r.id))
}

/// Adds a new version of key `key_name` (admin level); new ciphertexts use it, older ones still
/// decrypt with theirs. Returns the new version.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_key(key_name: Option<&str>) -> Result<i32, ErrorReport> {
    crate::errors::ensure_writable(c"warden.rotate_key()");
    let c = require("warden.rotate_key()", Some(Level::Admin))?;
    let name = key_name
        .filter(|n| !n.trim().is_empty())
        .ok_or(CryptoError::Null("key_name"))?;
    let tenant = c.tenant.clone();
    let Some((r, destroyed)) = newest(&tenant, name)? else {
        return Err(missing(CryptoError::NoSuchKey(name.into())).into());
    };
    if destroyed {
        return Err(CryptoError::KeyDestroyed(name.into()).into());
    }
    let version = r.version + 1;
    add_version(&tenant, name, r.id, version, &c.actor)?;
    audit("rotate_key", name, json!({ "version": version }))?;
    Ok(version as i32)
}

/// Destroys every version of `name` of `tenant` (the key material; the rows stay, so that
/// decryption says why it fails). Returns how many versions were destroyed.
fn destroy(tenant: &Ident, name: &str, by: &Ident) -> Result<i64, CryptoError> {
    let n = privileged(|| {
        Spi::connect_mut(|c| {
            let t = crate::catalog::id_cast(c"keyring", c"tenant");
            c.update(
                &format!(
                    "WITH d AS (UPDATE warden.keyring
                                   SET wrapped = NULL, destroyed_at = pg_catalog.now(), destroyed_by = $3{t}
                                 WHERE tenant = $1{t} AND name = $2 AND wrapped IS NOT NULL RETURNING 1)
                     SELECT count(*)::int8 FROM d"
                ),
                Some(1),
                &[tenant.as_str().into(), name.into(), by.as_str().into()],
            )?
            .first()
            .get_one::<i64>()
        })
    })?
    .unwrap_or(0);
    forget_cached_keys();
    Ok(n)
}

/// Destroys key `key_name` of the current tenant, every version (admin level): whatever was
/// encrypted with it, in backups too, can no longer be decrypted. Returns the versions destroyed.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn destroy_key(key_name: Option<&str>) -> Result<i64, ErrorReport> {
    crate::errors::ensure_writable(c"warden.destroy_key()");
    let c = require("warden.destroy_key()", Some(Level::Admin))?;
    let name = key_name
        .filter(|n| !n.trim().is_empty())
        .ok_or(CryptoError::Null("key_name"))?;
    let tenant = c.tenant.clone();
    if newest(&tenant, name)?.is_none() {
        return Err(missing(CryptoError::NoSuchKey(name.into())).into());
    }
    let n = destroy(&tenant, name, &c.actor)?;
    audit("destroy_key", name, json!({ "versions": n }))?;
    Ok(n)
}

/// Crypto-shredding for `warden.erase_subject`: destroys the subject's key in `tenant`, if any.
/// Returns the versions destroyed (0 when the subject has no key or the keyring is not installed).
pub fn destroy_subject_key(
    tenant: &Ident,
    subject: &Ident,
    by: &Ident,
) -> Result<i64, CryptoError> {
    if crate::catalog::warden_oid(c"keyring") == pg_sys::InvalidOid {
        return Ok(0);
    }
    destroy(tenant, &subject_key_name(subject), by)
}

/// [`destroy_subject_key`] as `erase_subject` asks for it (`registry::subject_erased`): the
/// report's `subject_key` entry when a key was destroyed.
fn on_subject_erased(
    tenant: &Ident,
    subject: &Ident,
    by: &Ident,
) -> Result<Option<(&'static str, serde_json::Value)>, String> {
    let shredded = destroy_subject_key(tenant, subject, by).map_err(|e| e.to_string())?;
    Ok((shredded > 0).then(|| {
        (
            "subject_key",
            serde_json::json!({ "name": subject_key_name(subject), "destroyed_versions": shredded }),
        )
    }))
}

/// Registers what encryption provides to the other capabilities (from `_PG_init`).
pub fn init() {
    crate::catalog::registry::provide_subject_erased(on_subject_erased);
    // with Citus, warden.citus_setup() gives every node a copy: distributed queries encrypt and
    // decrypt on the workers (keys stay wrapped by the master key every node reads)
    crate::catalog::citus::replicate(&[c"keyring", c"secrets"]);
}

pub fn subject_key_name(subject: &Ident) -> String {
    format!("{SUBJECT_PREFIX}{subject}")
}

/// The name of data subject `subject`'s own key: encrypt the subject's data with it, and
/// `warden.erase_subject` destroys it (crypto-shredding). Created on first use.
#[pg_extern(immutable, parallel_safe)]
fn subject_key(subject: pgrx::Uuid) -> String {
    subject_key_name(&Ident::from_uuid(&uuid::Uuid::from_bytes(
        *subject.as_bytes(),
    )))
}

/// Encrypts under the newest version of `name` of the context's tenant.
fn seal_with(c: &Claims, name: &str, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let tenant = c.tenant.clone();
    let r = match newest(&tenant, name)? {
        Some((r, false)) => r,
        Some((_, true)) => return Err(CryptoError::KeyDestroyed(name.into())),
        // a subject's key, and warden's own secrets key, come into being when first used
        None if name.starts_with(SUBJECT_PREFIX) || name == SECRETS_KEY => {
            crate::errors::ensure_writable(c"warden.encrypt() with a new subject key");
            create(&tenant, name, &c.actor)?
        }
        None => return Err(missing(CryptoError::NoSuchKey(name.into()))),
    };
    let key = data_key(r)?
        .and_then(|u| u.key)
        .ok_or(CryptoError::Destroyed {
            name: name.into(),
            version: r.version,
        })?;
    Ok(envelope::seal(
        &key,
        r,
        &random::<NONCE_LEN>()?,
        aad,
        plaintext,
    ))
}

/// Decrypts with the key the ciphertext names, which must belong to the context's tenant.
/// Returns the plaintext and the key's name.
fn open_with(c: &Claims, ciphertext: &[u8], aad: &[u8]) -> Result<(Vec<u8>, String), CryptoError> {
    let r = envelope::key_ref(ciphertext).map_err(CryptoError::Envelope)?;
    let u = data_key(r)?.ok_or_else(|| missing(CryptoError::UnknownKey))?;
    if u.tenant != c.tenant {
        return Err(CryptoError::OtherTenant);
    }
    let key = u.key.ok_or_else(|| CryptoError::Destroyed {
        name: u.name.clone(),
        version: r.version,
    })?;
    let plain = envelope::open(&key, ciphertext, aad).map_err(CryptoError::Envelope)?;
    Ok((plain, u.name))
}

/// Encrypts `data` (AES-256-GCM) under the newest version of the current tenant's key
/// `key_name`, bound to `aad` when given (e.g. the row's id).
#[pg_extern(volatile, parallel_unsafe)]
fn encrypt(
    data: Option<&[u8]>,
    key_name: Option<&str>,
    aad: default!(Option<&[u8]>, "NULL"),
) -> Result<Option<Vec<u8>>, ErrorReport> {
    let Some(data) = data else { return Ok(None) };
    let c = require("warden.encrypt()", None)?;
    let name = key_name
        .filter(|n| !n.trim().is_empty())
        .ok_or(CryptoError::Null("key_name"))?;
    if name.starts_with("warden:") {
        return Err(CryptoError::Reserved("warden:").into());
    }
    Ok(Some(seal_with(&c, name, aad.unwrap_or_default(), data)?))
}

/// `warden.encrypt` of a text's UTF-8 bytes.
#[pg_extern(name = "encrypt", volatile, parallel_unsafe)]
fn encrypt_text(
    data: Option<&str>,
    key_name: Option<&str>,
    aad: default!(Option<&[u8]>, "NULL"),
) -> Result<Option<Vec<u8>>, ErrorReport> {
    encrypt(data.map(str::as_bytes), key_name, aad)
}

/// Decrypts a ciphertext of `warden.encrypt` made under one of the current tenant's keys, with
/// the same `aad`. Tampered data or another aad: 22023; another tenant's key: 42501.
#[pg_extern(volatile, parallel_unsafe)]
fn decrypt(
    data: Option<&[u8]>,
    aad: default!(Option<&[u8]>, "NULL"),
) -> Result<Option<Vec<u8>>, ErrorReport> {
    let Some(data) = data else { return Ok(None) };
    let c = require("warden.decrypt()", Some(Level::Read))?;
    Ok(Some(open_with(&c, data, aad.unwrap_or_default())?.0))
}

/// `warden.decrypt` of a ciphertext of text.
#[pg_extern(volatile, parallel_unsafe)]
fn decrypt_text(
    data: Option<&[u8]>,
    aad: default!(Option<&[u8]>, "NULL"),
) -> Result<Option<String>, ErrorReport> {
    let Some(plain) = decrypt(data, aad)? else {
        return Ok(None);
    };
    Ok(Some(
        String::from_utf8(plain).map_err(|_| CryptoError::NotText)?,
    ))
}

/// Decrypts and encrypts again under the newest version of the same key (after `rotate_key`).
#[pg_extern(volatile, parallel_unsafe)]
fn reencrypt(
    data: Option<&[u8]>,
    aad: default!(Option<&[u8]>, "NULL"),
) -> Result<Option<Vec<u8>>, ErrorReport> {
    let Some(data) = data else { return Ok(None) };
    let c = require("warden.reencrypt()", Some(Level::Write))?;
    let aad = aad.unwrap_or_default();
    let (plain, name) = open_with(&c, data, aad)?;
    Ok(Some(seal_with(&c, &name, aad, &plain)?))
}

/// A secret's associated data: its tenant and name. A uuid tenant by its 16 bytes, as before
/// 0.6.0 (secrets stored then still decrypt); another identifier by a label, its length and text.
fn secret_aad(tenant: &Ident, name: &str) -> Vec<u8> {
    let mut a = match tenant.as_uuid() {
        Some(u) => u.as_bytes().to_vec(),
        None => {
            let t = tenant.as_str().as_bytes();
            let mut a = b"id:".to_vec();
            a.extend_from_slice(&(t.len() as u16).to_be_bytes());
            a.extend_from_slice(t);
            a
        }
    };
    a.extend_from_slice(name.as_bytes());
    a
}

/// Stores (or replaces) the current tenant's secret `name`, encrypted (admin level).
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn put_secret(name: Option<&str>, value: Option<&str>) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.put_secret()");
    let c = require("warden.put_secret()", Some(Level::Admin))?;
    let name = name
        .filter(|n| !n.trim().is_empty())
        .ok_or(CryptoError::Null("name"))?;
    let value = value.ok_or(CryptoError::Null("value"))?;
    let tenant = c.tenant.clone();
    let sealed = seal_with(
        &c,
        SECRETS_KEY,
        &secret_aad(&tenant, name),
        value.as_bytes(),
    )?;
    privileged(|| {
        Spi::connect_mut(|s| {
            let t = crate::catalog::id_cast(c"secrets", c"tenant");
            s.update(
                &format!(
                    "INSERT INTO warden.secrets (tenant, name, ciphertext, updated_at, updated_by)
                 VALUES ($1{t}, $2, $3, pg_catalog.now(), $4{t})
                 ON CONFLICT (tenant, name) DO UPDATE
                    SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at,
                        updated_by = excluded.updated_by"
                ),
                None,
                &[
                    tenant.as_str().into(),
                    name.into(),
                    sealed.into(),
                    c.actor.as_str().into(),
                ],
            )
            .map(|_| ())
        })
    })?;
    if crate::audit::record::installed() {
        let ev = NewEvent::in_context("put_secret", Status::Success)
            .resource("secret", Some(name))
            .changes("{}".into());
        crate::audit::record(&ev).map_err(CryptoError::Record)?;
    }
    Ok(())
}

/// The current tenant's secret `name` (read level). Every read is an audit event that survives a
/// rollback; when it cannot be recorded, the secret is not returned.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn get_secret(name: Option<&str>) -> Result<String, ErrorReport> {
    let c = require("warden.get_secret()", Some(Level::Read))?;
    let name = name
        .filter(|n| !n.trim().is_empty())
        .ok_or(CryptoError::Null("name"))?;
    let tenant = c.tenant.clone();
    let secrets = crate::catalog::citus::read_from(c"secrets").map_err(CryptoError::Internal)?;
    let sealed = privileged(|| {
        Spi::connect(|s| {
            let t = crate::catalog::id_cast(c"secrets", c"tenant");
            let rows = s.select(
                &format!(
                    "SELECT x.ciphertext FROM {secrets} x WHERE x.tenant = $1{t} AND x.name = $2"
                ),
                Some(1),
                &[tenant.as_str().into(), name.into()],
            )?;
            match rows.into_iter().next() {
                Some(r) => r.get::<Vec<u8>>(1),
                None => Ok(None),
            }
        })
    })?
    .ok_or_else(|| CryptoError::NoSecret(name.into()))?;
    let (plain, _) = open_with(&c, &sealed, &secret_aad(&tenant, name))?;
    let ev = NewEvent::in_context("get_secret", Status::Success)
        .resource("secret", Some(name))
        .changes("{}".into());
    if !crate::audit::record_autonomous(&ev) {
        return Err(CryptoError::Unrecorded(name.into()).into());
    }
    Ok(String::from_utf8(plain).map_err(|_| CryptoError::NotText)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_master_key_file_holds_64_hex_digits() {
        let k = parse_master(&format!("  {}\n", "ab".repeat(32))).unwrap();
        assert_eq!(k, [0xab; 32]);
        for bad in [
            "",
            "ab",
            &"ab".repeat(31),
            &"zz".repeat(32),
            &"00".repeat(32),
            &"ab".repeat(33),
        ] {
            assert!(parse_master(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_secret_is_bound_to_its_tenant_and_name() {
        let id = |s: &str| Ident::parse(s).unwrap();
        let (a, b) = (
            id("01010101-0101-0101-0101-010101010101"),
            id("02020202-0202-0202-0202-020202020202"),
        );
        assert_ne!(secret_aad(&a, "db"), secret_aad(&b, "db"));
        assert_ne!(secret_aad(&a, "db"), secret_aad(&a, "db2"));
        // a uuid tenant is bound as before 0.6.0: its 16 bytes, then the name
        assert_eq!(secret_aad(&a, "db"), [[1u8; 16].as_slice(), b"db"].concat());
        // other identifiers by their exact text, never alike
        assert_ne!(secret_aad(&id("42"), "db"), secret_aad(&id("042"), "db"));
        assert_ne!(
            secret_aad(&id("org_a"), "db"),
            secret_aad(&id("org_A"), "db")
        );
        assert_ne!(
            secret_aad(&id("ab"), "cdb"),
            secret_aad(&id("abc"), "db"),
            "the length separates tenant and name"
        );
    }
}
