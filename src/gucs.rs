//! warden's configuration parameters. Everything that decides how tokens are verified is
//! superuser-only to set (`PGC_SUSET`) and the secret is superuser-only to read. The context carrier,
//! `warden.context_token`, can be set by anyone, but only to a token that verifies (its check hook is
//! its owner's, `context`, which defines it with [`define_carrier`]), and it only counts as a context while it is transaction-local.
//!
//! Floor 1, ground: settings only; each owner registers its own hooks (the carrier: `context`).

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicU64, Ordering};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

/// HS256 key shared with the application's auth server. Superuser-only to set and to read.
pub static JWT_SECRET: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// When set, a token's `aud` must contain it.
pub static JWT_AUDIENCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// When set, a token's `iss` must equal it.
pub static JWT_ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub static JWT_LEEWAY: GucSetting<i32> = GucSetting::<i32>::new(0);
/// Lifetime, in seconds, of the context token `warden.set_context()` mints.
pub static CONTEXT_TTL: GucSetting<i32> = GucSetting::<i32>::new(3600);
/// Seconds an audit event is kept before warden.purge_audit() may remove it (365 days).
pub static AUDIT_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(365 * 86400);
/// Milliseconds a caller waits for the sealing worker to confirm an autonomous event.
pub static AUDIT_AUTONOMOUS_WAIT: GucSetting<i32> = GucSetting::<i32>::new(2000);
/// Milliseconds between two sealing passes of the audit worker.
pub static AUDIT_SEAL_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(200);
/// Which authentications are recorded: failures (default) or all.
pub static AUDIT_AUTHENTICATION: GucSetting<AuditAuthentication> =
    GucSetting::<AuditAuthentication>::new(AuditAuthentication::Failures);

/// Seconds since its token was issued within which an actor may delete their own account.
pub static REAUTH_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(300);
/// Seconds without use after which an active API key is listed in warden.stale_api_keys.
pub static KEY_STALE_AFTER: GucSetting<i32> = GucSetting::<i32>::new(90 * 86400);
/// The file holding the master key that wraps every data key of warden.encrypt (64 hex digits).
pub static MASTER_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// No context (authenticate, authenticate_key, set_context, SET LOCAL of the carrier) on a
/// connection without TLS 1.2 or later.
pub static REQUIRE_TLS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Break-glass: allows DROP EXTENSION/SCHEMA warden while the trail holds events younger than
/// warden.audit_retention. Only the server's configuration (postgresql.conf, ALTER SYSTEM), never SET.
pub static ALLOW_EVIDENCE_DROP: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Column names `warden.security_lint()` takes for tenant columns (with those protect_table was given).
pub static LINT_TENANT_COLUMNS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"tenant_id,org_id,account_id"));
/// Seconds after which `warden.security_lint()` reports a tenant key that was not rotated.
pub static KEY_ROTATION_AGE: GucSetting<i32> = GucSetting::<i32>::new(365 * 86400);
/// Seconds within which `warden.security_lint()` expects the chain verified and a digest taken.
pub static AUDIT_CHECK_AGE: GucSetting<i32> = GucSetting::<i32>::new(7 * 86400);
/// Whether the server log is cleaned of credentials, passwords and personal data (postgres::log).
pub static LOG_REDACTION: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Key of the keyed hashes (pseudonyms) of personal data; derived from warden.jwt_secret when unset.
pub static PSEUDONYM_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

#[derive(Clone, Copy, PartialEq, Eq, pgrx::PostgresGucEnum)]
pub enum AuditAuthentication {
    #[name = c"failures"]
    Failures,
    #[name = c"all"]
    All,
}
/// The carrier of the current context: a signed token, set transaction-locally by
/// `warden.authenticate()`, `warden.set_context()` or `SET LOCAL` (how Citus forwards it).
pub static CONTEXT_TOKEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub const CONTEXT_TOKEN_NAME: &CStr = c"warden.context_token";

const HIDDEN: GucFlags = GucFlags::SUPERUSER_ONLY.union(GucFlags::NO_SHOW_ALL);

/// Bumped by every assignment of the carrier (SET, SET LOCAL, the restores at ROLLBACK TO SAVEPOINT
/// and at transaction end): a cached verdict about the context is valid only for the generation it
/// was made in. Backends are single-threaded; the atomics only make the statics safe to share.
static CARRIER_GEN: AtomicU64 = AtomicU64::new(1);
/// Bumped by every assignment of a setting that verification depends on (secret, audience,
/// issuer, leeway).
static CONFIG_GEN: AtomicU64 = AtomicU64::new(1);

pub fn carrier_generation() -> u64 {
    CARRIER_GEN.load(Ordering::Relaxed)
}

pub fn config_generation() -> u64 {
    CONFIG_GEN.load(Ordering::Relaxed)
}

unsafe extern "C-unwind" fn bump_config_string(
    _: *const std::ffi::c_char,
    _: *mut std::ffi::c_void,
) {
    CONFIG_GEN.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C-unwind" fn bump_config_int(_: i32, _: *mut std::ffi::c_void) {
    CONFIG_GEN.fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C-unwind" fn bump_carrier(_: *const std::ffi::c_char, _: *mut std::ffi::c_void) {
    CARRIER_GEN.fetch_add(1, Ordering::Relaxed);
}

pub fn init() {
    // SAFETY (every define_*_with_hooks below): the hooks only bump a counter, or, for the carrier's
    // check hook, run under #[pg_guard].
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"warden.jwt_secret",
            c"HS256 secret that signs warden tokens.",
            c"At least 32 bytes. Set it in postgresql.conf, with ALTER SYSTEM or ALTER DATABASE; only superusers can set or read it.",
            &JWT_SECRET,
            GucContext::Suset,
            HIDDEN,
            None,
            Some(bump_config_string),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"warden.jwt_audience",
            c"When set, a token's aud claim must contain this value.",
            c"",
            &JWT_AUDIENCE,
            GucContext::Suset,
            GucFlags::empty(),
            None,
            Some(bump_config_string),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"warden.jwt_issuer",
            c"When set, a token's iss claim must equal this value.",
            c"",
            &JWT_ISSUER,
            GucContext::Suset,
            GucFlags::empty(),
            None,
            Some(bump_config_string),
            None,
        );
        GucRegistry::define_int_guc_with_hooks(
            c"warden.jwt_leeway",
            c"Seconds of clock skew tolerated when checking exp and nbf.",
            c"",
            &JWT_LEEWAY,
            0,
            300,
            GucContext::Suset,
            GucFlags::UNIT_S,
            None,
            Some(bump_config_int),
            None,
        );
    }
    GucRegistry::define_int_guc(
        c"warden.context_ttl",
        c"Lifetime of the context token minted by warden.set_context().",
        c"",
        &CONTEXT_TTL,
        1,
        86400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"warden.audit_retention",
        c"How long audit events are kept: warden.purge_audit() removes older ones.",
        c"",
        &AUDIT_RETENTION,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"warden.audit_autonomous_wait",
        c"How long a failing statement waits for the sealing worker to confirm its denial event.",
        c"The caller's own error stands either way; an unconfirmed event is counted in warden.audit_queue_status().",
        &AUDIT_AUTONOMOUS_WAIT,
        0,
        60000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"warden.audit_seal_interval",
        c"How often the audit worker seals committed events.",
        c"Longer intervals seal in larger batches (less work per event), shorter ones sooner.",
        &AUDIT_SEAL_INTERVAL,
        1,
        10000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_enum_guc(
        c"warden.audit_authentication",
        c"Which warden.authenticate() calls are audit events: failures or all.",
        c"all writes one event per authenticated transaction.",
        &AUDIT_AUTHENTICATION,
        GucContext::Suset,
        GucFlags::empty(),
    );
    GucRegistry::define_int_guc(
        c"warden.reauth_window",
        c"How recently a token must have been issued (iat) for its actor to delete their own account.",
        c"",
        &REAUTH_WINDOW,
        0,
        86400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"warden.key_stale_after",
        c"How long an active API key may go unused before warden.stale_api_keys lists it.",
        c"",
        &KEY_STALE_AFTER,
        60,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"warden.require_tls",
        c"Refuses to establish a warden context on a connection without TLS 1.2 or later.",
        c"Unix sockets included. Superuser-only; per database with ALTER DATABASE ... SET warden.require_tls = on.",
        &REQUIRE_TLS,
        GucContext::Suset,
        GucFlags::empty(),
    );
    GucRegistry::define_string_guc(
        c"warden.lint_tenant_columns",
        c"Column names warden.security_lint() treats as tenant columns (comma-separated), besides those protect_table was given.",
        c"",
        &LINT_TENANT_COLUMNS,
        GucContext::Suset,
        GucFlags::empty(),
    );
    GucRegistry::define_int_guc(
        c"warden.key_rotation_age",
        c"How old a tenant key's current version may be before warden.security_lint() reports it.",
        c"",
        &KEY_ROTATION_AGE,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"warden.audit_check_age",
        c"How recently warden.security_lint() expects warden.verify_audit() and warden.audit_digest() to have run.",
        c"",
        &AUDIT_CHECK_AGE,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"warden.allow_evidence_drop",
        c"Break-glass: allows DROP EXTENSION warden (and DROP SCHEMA warden) while the audit trail holds events younger than warden.audit_retention.",
        c"Only in the server's configuration (postgresql.conf or ALTER SYSTEM, then a reload), never SET; each drop it allows is written to the server log.",
        &ALLOW_EVIDENCE_DROP,
        GucContext::Sighup,
        GucFlags::empty(),
    );
    GucRegistry::define_bool_guc(
        c"warden.log_redaction",
        c"Removes tokens, API keys, passwords and registered personal data from messages before they reach the server log.",
        c"What the client receives is unchanged. Superuser-only.",
        &LOG_REDACTION,
        GucContext::Suset,
        GucFlags::empty(),
    );
    GucRegistry::define_string_guc(
        c"warden.master_key_file",
        c"File with the master key (64 hex digits) that wraps warden's data keys.",
        c"Readable by the server only; never stored in the database, so a dump alone decrypts nothing.",
        &MASTER_KEY_FILE,
        GucContext::Suset,
        HIDDEN,
    );
    GucRegistry::define_string_guc(
        c"warden.pseudonym_key",
        c"Key of the keyed hashes of personal data (the hash anonymization method, audit events of registered columns).",
        c"When unset, a key derived from warden.jwt_secret is used. Changing it changes every pseudonym computed after.",
        &PSEUDONYM_KEY,
        GucContext::Suset,
        HIDDEN,
    );
}

/// Reserves the `warden.` prefix, once every setting is defined (last in `_PG_init`): any other
/// warden.* name is an error rather than a free-for-all placeholder, so `SET warden.tenant` fails
/// loudly instead of looking like it did something.
pub fn reserve_prefix() {
    // SAFETY: called once from _PG_init.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"warden".as_ptr()) };
}

/// Defines the carrier, `warden.context_token`, with its owner's check hook (`context::init`).
pub fn define_carrier(
    check: unsafe extern "C-unwind" fn(
        *mut *mut std::ffi::c_char,
        *mut *mut std::ffi::c_void,
        pg_sys::GucSource::Type,
    ) -> bool,
) {
    // Settable by any role, but the check hook admits only a token that verifies, and only from a
    // SET or SET LOCAL (never from ALTER ROLE/DATABASE, the startup packet or a function's SET
    // clause). Reading it stays superuser-only: a minted token is a bearer credential.
    // SAFETY: the check hook is a pgrx-guarded function; the assign hook bumps a counter.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            CONTEXT_TOKEN_NAME,
            c"Signed token carrying the current warden context (transaction-local).",
            c"Set by warden.authenticate(), warden.set_context() or SET LOCAL; only a token that verifies is accepted, and only a transaction-local value counts.",
            &CONTEXT_TOKEN,
            GucContext::Userset,
            HIDDEN
                | GucFlags::DISALLOW_IN_FILE
                | GucFlags::DISALLOW_IN_AUTO_FILE,
            Some(check),
            Some(bump_carrier),
            None,
        );
    }
}

static CARRIER_CONFIG: std::sync::atomic::AtomicPtr<pg_sys::config_generic> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// PostgreSQL's record of the carrier setting (its value's source and its stack of transaction and
/// savepoint levels), found once by name. The record is allocated once when the setting is defined
/// and never moves; null only if the setting is not defined.
pub fn carrier_config() -> *mut pg_sys::config_generic {
    let cached = CARRIER_CONFIG.load(Ordering::Relaxed);
    if !cached.is_null() {
        return cached;
    }
    // SAFETY: get_guc_variables() returns PostgreSQL's array of GetNumConfigOptions() valid
    // pointers; each name is a NUL-terminated string.
    let found = unsafe {
        let vars = pg_sys::get_guc_variables();
        let n = usize::try_from(pg_sys::GetNumConfigOptions()).unwrap_or(0);
        (0..n)
            .map(|i| *vars.add(i))
            .find(|&g| !g.is_null() && CStr::from_ptr((*g).name) == CONTEXT_TOKEN_NAME)
            .unwrap_or(std::ptr::null_mut())
    };
    CARRIER_CONFIG.store(found, Ordering::Relaxed);
    found
}

/// Whether the carrier's current value was set for the current transaction (SET LOCAL, or the
/// equivalent `GUC_ACTION_LOCAL` of authenticate/set_context), as opposed to a session-level SET, a
/// `set_config(..., false)` or a value that outlived an earlier transaction. Only such a value is a
/// context: anything else would reach the next client of a pooled connection.
pub fn carrier_is_transaction_local() -> bool {
    let g = carrier_config();
    if g.is_null() {
        return false;
    }
    // SAFETY: `g` is PostgreSQL's live record of the setting; its stack entries live in
    // TopTransactionContext and are valid while this transaction runs.
    unsafe {
        let top = (*g).stack;
        !top.is_null()
            && matches!(
                (*top).state,
                pg_sys::GucStackState::GUC_LOCAL | pg_sys::GucStackState::GUC_SET_LOCAL
            )
    }
}

/// Whether the Citus library is loaded in this backend (it defines the citus.* settings).
pub fn citus_loaded() -> bool {
    // SAFETY: a read-only lookup; missing_ok = true never raises.
    unsafe {
        !pg_sys::GetConfigOption(c"citus.propagate_set_commands".as_ptr(), true, false).is_null()
    }
}

/// Runs `f` on the current bytes of a string setting (empty when unset), without copying.
/// The borrow must not outlive `f`: the next SET may free the string.
pub fn with_bytes<R>(setting: &GucSetting<Option<CString>>, f: impl FnOnce(&[u8]) -> R) -> R {
    // SAFETY: PostgreSQL owns the pointer; it is either null or a NUL-terminated string that stays
    // valid until the setting is next assigned, which cannot happen while `f` runs pure Rust.
    let ptr = unsafe { *setting.as_ptr() };
    if ptr.is_null() {
        f(&[])
    } else {
        f(unsafe { CStr::from_ptr(ptr) }.to_bytes())
    }
}

/// A string setting as an owned `String`; `None` when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    with_bytes(setting, |b| {
        (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
    })
}
