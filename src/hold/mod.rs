//! Legal holds: data a hold covers survives every way PostgreSQL offers to destroy it, and every
//! attempt is on record. See README, "Legal holds".
//!
//! - `cache`: this backend's copy of the active holds and of the personal-data registry, read as
//!   the `warden_guard` role and dropped when either table changes (relcache invalidation), so a
//!   guard costs a hash lookup, not a query.
//! - `guard`: the C triggers on protected tables (DELETE per row, UPDATE of personal data per row,
//!   DELETE and TRUNCATE per statement) and the checks the utility hook runs around DROP, ALTER
//!   TABLE and DROP EXTENSION.
//! - `api`: place_hold, release_hold, verify_holds.

pub mod api;
pub mod cache;
pub mod guard;

use pgrx::PgSqlErrorCode;

use crate::errors::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("{operation} on {table} is refused: legal hold \"{case_ref}\" covers {what}")]
    Held {
        operation: String,
        table: String,
        case_ref: String,
        hold: String,
        what: &'static str,
    },
    #[error("{operation} on {table} is refused: whether a legal hold covers it cannot be determined ({reason})")]
    Undetermined {
        operation: String,
        table: String,
        reason: String,
    },
    #[error("{verb} of {table} is refused: the table is append-only")]
    Immutable { verb: &'static str, table: String },
    #[error("{what} needs admin level in tenant {tenant} or membership in warden_admin (current role: {role}, level: {level})")]
    NotAllowed {
        what: &'static str,
        tenant: String,
        role: String,
        level: String,
    },
    #[error("{0} must not be NULL or empty")]
    Null(&'static str),
    #[error("table {0} is not protected, so a hold cannot guard it")]
    NotProtected(String),
    #[error("legal hold {0} does not exist")]
    NoSuchHold(String),
    #[error("legal hold {0} was already released")]
    Released(String),
    #[error("legal holds need warden in shared_preload_libraries")]
    NotPreloaded,
    #[error("internal error: {0}")]
    Internal(String),
    #[error("internal error: {0}")]
    Spi(#[from] pgrx::spi::Error),
    #[error("{0}")]
    Record(#[from] crate::audit::record::RecordError),
}

impl SqlError for HoldError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            HoldError::Held { .. }
            | HoldError::Undetermined { .. }
            | HoldError::Immutable { .. }
            | HoldError::NotAllowed { .. } => ERRCODE_INSUFFICIENT_PRIVILEGE,
            HoldError::Null(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            HoldError::NoSuchHold(_) => ERRCODE_UNDEFINED_OBJECT,
            HoldError::NotProtected(_)
            | HoldError::Released(_)
            | HoldError::NotPreloaded
            | HoldError::Record(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            HoldError::Spi(_) | HoldError::Internal(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            HoldError::Held { hold, .. } => format!(
                "The data is evidence under a legal hold. Only releasing the hold ends it: SELECT warden.release_hold('{hold}', '<reason>'); (admin level of the tenant or warden_admin)."
            ),
            HoldError::Undetermined { .. } => {
                "warden refuses destruction it cannot prove is allowed. Authenticate first (SELECT warden.authenticate($1)), and check that warden_guard can read warden.holds (SELECT * FROM warden.verify_holds())."
                    .into()
            }
            HoldError::Immutable { .. } => {
                "warden writes it through its functions only and never changes or removes a row: a hold ends with warden.release_hold(), a consent is superseded by warden.record_consent().".into()
            }
            HoldError::NotAllowed { .. } => {
                "Authenticate with an admin-level token of that tenant, or have a superuser GRANT warden_admin TO <role>.".into()
            }
            HoldError::Null(_) => {
                "Holds are placed and released with a reason: SELECT warden.place_hold('CASE-1', 'litigation', '<tenant uuid>'); SELECT warden.release_hold('<hold id>', 'settled');".into()
            }
            HoldError::NotProtected(t) => {
                format!("Protect it first: SELECT warden.protect_table('{t}');")
            }
            HoldError::NoSuchHold(_) | HoldError::Released(_) => {
                "SELECT id, case_ref, active FROM warden.legal_holds;".into()
            }
            HoldError::NotPreloaded => {
                "Add warden to shared_preload_libraries and restart: the guards on DROP and ALTER TABLE live in its utility hook.".into()
            }
            HoldError::Record(_) => "ALTER EXTENSION warden UPDATE;".into(),
            HoldError::Spi(_) | HoldError::Internal(_) => return None,
        })
    }
}
crate::sql_error!(HoldError);

static PRELOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers the cache's invalidation callback and notes whether warden is preloaded; from
/// `_PG_init`.
pub fn init() {
    // SAFETY: reads a flag PostgreSQL sets while it loads shared_preload_libraries.
    if unsafe { pgrx::pg_sys::process_shared_preload_libraries_in_progress } {
        PRELOADED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    cache::init();
}

/// Whether warden was loaded through shared_preload_libraries (so its utility hook is in every
/// backend from the start).
pub fn preloaded() -> bool {
    PRELOADED.load(std::sync::atomic::Ordering::Relaxed)
}
