//! Legal holds: data a hold covers survives every way PostgreSQL offers to destroy it, and every
//! attempt is on record. See README, "Legal holds".
//!
//! - `cache`: this backend's copy of the active holds, read as the `warden_guard` role and dropped
//!   when they change (relcache invalidation, `catalog`), so a guard costs a hash lookup, not a
//!   query.
//! - `guard`: the C triggers on protected tables (DELETE per row, UPDATE of personal data per row,
//!   DELETE and TRUNCATE per statement) and the checks the utility hook runs around DROP, ALTER
//!   TABLE and DROP EXTENSION.
//! - `api`: place_hold, release_hold, verify_holds.
//!
//! Floor 4, capability: uses the floors below; never another capability (provides `catalog::registry` slots).

pub mod api;
pub mod cache;
pub mod guard;
pub mod marker;
pub mod preserve;

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
    #[error("{0}")]
    Invalid(String),
    #[error("table {0} is not protected, so a hold cannot guard it")]
    NotProtected(String),
    #[error("legal hold {0} does not exist")]
    NoSuchHold(String),
    #[error("legal hold {0} was already released")]
    Released(String),
    #[error("legal hold {hold} (\"{case_ref}\") is still active: the versions it keeps stay")]
    StillHeld { hold: String, case_ref: String },
    #[error("DROP DATABASE {database} is refused: {why}")]
    DropDatabase { database: String, why: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("legal holds need warden in shared_preload_libraries")]
    NotPreloaded,
    #[error("the legal holds could not be read: {0}")]
    Unreadable(String),
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
            | HoldError::NotAllowed { .. }
            | HoldError::DropDatabase { .. }
            | HoldError::Unreadable(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            HoldError::Null(_) | HoldError::Invalid(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            HoldError::NoSuchHold(_) => ERRCODE_UNDEFINED_OBJECT,
            HoldError::Unsupported(_) => ERRCODE_FEATURE_NOT_SUPPORTED,
            HoldError::NotProtected(_)
            | HoldError::Released(_)
            | HoldError::NotPreloaded
            | HoldError::StillHeld { .. }
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
            HoldError::Unsupported(_) => {
                "On Citus, replicate warden's holds to every node first: as a superuser on the coordinator (added with citus_set_coordinator_host()), SELECT * FROM warden.citus_setup(); (README, \"Running on Citus\")."
                    .into()
            }
            HoldError::StillHeld { hold, .. } => format!(
                "Release the hold first (SELECT warden.release_hold('{hold}', '<reason>')); versions another active hold also covers stay until that one is released."
            ),
            HoldError::DropDatabase { database, .. } => format!(
                "The database's data is evidence under a legal hold. Release its holds first, connected to it: psql -d {database} -c \"SELECT warden.release_hold('<hold id>', '<reason>')\" (warden.legal_holds lists them)."
            ),
            HoldError::NotPreloaded => {
                "Add warden to shared_preload_libraries and restart: the guards on DROP and ALTER TABLE live in its utility hook.".into()
            }
            HoldError::Record(_) => "ALTER EXTENSION warden UPDATE;".into(),
            HoldError::Unreadable(_) => "SELECT * FROM warden.verify_holds();".into(),
            HoldError::Invalid(_) => {
                "An identifier is 1 to 255 bytes of text without control characters: a uuid, a number or a provider's id.".into()
            }
            HoldError::Spi(_) | HoldError::Internal(_) => return None,
        })
    }
}
crate::errors::sql_error!(HoldError);

/// Watches the holds' tables and registers what holds provide to the other capabilities (from
/// `_PG_init`).
pub fn init() {
    cache::init();
    crate::catalog::registry::provide_active_holds(active_holds);
    crate::catalog::registry::provide_before_unprotect(guard::before_unprotect);
    crate::catalog::registry::provide_subject_erased(preserve::subject_erased);
}

/// The active holds, for the capabilities that must not destroy what they cover
/// (`registry::active_holds`).
fn active_holds() -> Result<std::rc::Rc<Vec<crate::catalog::registry::HoldInfo>>, String> {
    let snap = cache::snapshot()?;
    Ok(std::rc::Rc::new(
        snap.holds
            .iter()
            .map(|h| crate::catalog::registry::HoldInfo {
                id: h.id.clone(),
                case_ref: h.case_ref.clone(),
                tenant: h.tenant.clone(),
                tbl: h.tbl,
                subject: h.subject.clone(),
            })
            .collect(),
    ))
}
