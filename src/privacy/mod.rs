//! Data-subject rights (GDPR): which columns hold whose personal data, erasure that respects legal
//! holds, export, consent, account deletion. See README, "Personal data and GDPR".
//!
//! - `method`: anonymization methods and keyed hashes (pure logic).
//! - `api`: the SQL functions.
//!
//! Floor 4, capability: uses the floors below; never another capability (asks through `catalog::registry`).

pub mod api;
pub mod method;

use pgrx::PgSqlErrorCode;

use crate::errors::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("{what} is refused: legal hold \"{case_ref}\" covers the data of subject {subject}")]
    Held {
        what: &'static str,
        subject: String,
        case_ref: String,
        hold: String,
    },
    #[error("{what} needs {needs} (current: {current})")]
    NotAllowed {
        what: &'static str,
        needs: &'static str,
        current: String,
    },
    #[error("must be owner of table {table} to register its personal data (current role: {role})")]
    NotOwner { table: String, role: String },
    #[error("table {0} is not protected")]
    NotProtected(String),
    #[error("table {table} has no column \"{column}\"")]
    NoColumn { table: String, column: String },
    #[error("column \"{column}\" of table {table} is {actual}; a subject column is uuid, text, varchar, bigint or integer")]
    NotUuid {
        table: String,
        column: String,
        actual: String,
    },
    #[error("column \"{column}\" of table {table} cannot be anonymized with \"{method}\": {why}")]
    BadMethod {
        table: String,
        column: String,
        method: String,
        why: String,
    },
    #[error("{0}")]
    UnknownMethod(#[from] method::UnknownMethod),
    #[error("table {table} is registered with subject column \"{existing}\", not \"{given}\"")]
    OtherSubjectColumn {
        table: String,
        existing: String,
        given: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("warden._pseudonym() is for warden's own erasure and superusers")]
    Oracle,
    #[error("no key for keyed hashes: neither warden.pseudonym_key nor warden.jwt_secret is set")]
    NoKey,
    #[error("account {actor} cannot be deleted: {}", failures.join("; "))]
    Prerequisites {
        actor: String,
        failures: Vec<String>,
    },
    #[error("the personal data registry could not be read: {0}")]
    Registry(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("internal error: {0}")]
    Spi(#[from] pgrx::spi::Error),
    #[error("{0}")]
    Record(#[from] crate::audit::record::RecordError),
}

impl SqlError for PrivacyError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            PrivacyError::Held { .. }
            | PrivacyError::NotAllowed { .. }
            | PrivacyError::NotOwner { .. }
            | PrivacyError::Oracle => ERRCODE_INSUFFICIENT_PRIVILEGE,
            PrivacyError::NotProtected(_)
            | PrivacyError::NoKey
            | PrivacyError::Prerequisites { .. }
            | PrivacyError::Record(_)
            | PrivacyError::Unreachable(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            PrivacyError::NoColumn { .. } => ERRCODE_UNDEFINED_COLUMN,
            PrivacyError::NotUuid { .. } => ERRCODE_DATATYPE_MISMATCH,
            PrivacyError::BadMethod { .. }
            | PrivacyError::UnknownMethod(_)
            | PrivacyError::OtherSubjectColumn { .. }
            | PrivacyError::Invalid(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            PrivacyError::Registry(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            PrivacyError::Internal(_) | PrivacyError::Spi(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            PrivacyError::Held { hold, .. } => format!(
                "GDPR Art. 17(3)(e): data under a legal hold is kept. Erase it once the hold is released: SELECT warden.release_hold('{hold}', '<reason>');"
            ),
            PrivacyError::NotAllowed { .. } => {
                "Authenticate with a token of the required level (warden.authenticate) in the subject's tenant.".into()
            }
            PrivacyError::NotOwner { .. } => "Run it as the table's owner.".into(),
            PrivacyError::NotProtected(t) => format!("Protect it first: SELECT warden.protect_table('{t}');"),
            PrivacyError::NoColumn { .. } => "Check the column names; they are case-sensitive when quoted.".into(),
            PrivacyError::NotUuid { table, column, .. } => format!(
                "The subject column holds the data subject's id (the sub of their tokens): name such a column, or convert this one, e.g. ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {column}::text;"
            ),
            PrivacyError::BadMethod { .. } => {
                "Use null for nullable columns, redact or hash for text columns, constant:<value> for anything else.".into()
            }
            PrivacyError::UnknownMethod(_) => "Use one of: null, redact, hash, constant:<value>.".into(),
            PrivacyError::OtherSubjectColumn { .. } => {
                "A table has one subject column: register every personal column with it.".into()
            }
            PrivacyError::Unreachable(_) => {
                "Check the cluster (SELECT * FROM citus_check_cluster_node_health();) and export again: the export is complete or it is refused.".into()
            }
            PrivacyError::Oracle => {
                "It would let anyone test guesses against the pseudonyms in the audit trail; register a column with method hash and warden.erase_subject() computes them.".into()
            }
            PrivacyError::NoKey => {
                "A superuser sets one: ALTER SYSTEM SET warden.pseudonym_key = '...'; SELECT pg_reload_conf();".into()
            }
            PrivacyError::Prerequisites { .. } => {
                "Fix each of them first: transfer tenant ownership to another admin, wait for the legal hold to be released, register the membership table (warden.register_memberships).".into()
            }
            PrivacyError::Registry(_) => "SELECT * FROM warden.verify_holds();".into(),
            PrivacyError::Record(_) => "ALTER EXTENSION warden UPDATE;".into(),
            PrivacyError::Invalid(_)
            | PrivacyError::Internal(_)
            | PrivacyError::Spi(_) => return None,
        })
    }
}
crate::errors::sql_error!(PrivacyError);

pub use crate::catalog::subjects::{erasing, while_erasing};

/// The current pseudonym key (see [`crate::catalog::subjects::derive_key`]).
pub fn key() -> Result<Vec<u8>, PrivacyError> {
    crate::catalog::subjects::key().ok_or(PrivacyError::NoKey)
}
