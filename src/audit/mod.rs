//! The audit trail: every significant change and security event, in a table nobody can alter
//! without it showing. See README, "Audit trail".
//!
//! - `canonical`, `chain`, `queue`, `redact`: pure logic (serialization, hash chain, the bounded
//!   queue, statement redaction), tested without a server.
//! - `record`: the event path other modules call, [`record`] and [`record_autonomous`].
//! - `trigger`: the row and TRUNCATE triggers of audited tables, and the immutability trigger.
//! - `seal` and `worker`: numbering and chaining committed events, in a background worker.
//! - `auth`: the authentication floor's reports (`context::Sink`) as events.
//! - `api`: the SQL functions (enable_audit, log_event, verify_audit, purge_audit, ...).
//!
//! Floor 3, the event path: uses the ground and the authentication floor; knows no capability.

pub mod api;
pub mod auth;
pub mod canonical;
pub mod chain;
pub mod evidence;
pub mod jsonb;
pub mod queue;
pub mod record;
pub mod redact;
pub mod seal;
pub mod trigger;
pub mod verify;
pub mod worker;

use pgrx::PgSqlErrorCode;

pub use record::{record, record_autonomous, record_queued, NewEvent, Status};

/// The sealing worker's shared memory and the authentication sink (from `_PG_init`).
pub fn init() {
    worker::init();
    auth::init();
}

use crate::errors::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{verb} of {table} is refused: the audit trail is append-only")]
    Immutable { verb: &'static str, table: String },
    #[error("{0}")]
    Record(#[from] record::RecordError),
    #[error("{table} is {kind}, not a table")]
    NotATable { table: String, kind: String },
    #[error("must be owner of table {table} to change its auditing (current role: {role})")]
    NotOwner { table: String, role: String },
    #[error("table {table} has no column \"{column}\" to redact")]
    NoColumn { table: String, column: String },
    #[error("{0} must not be NULL")]
    Null(&'static str),
    #[error("status must be success, denied or error, not \"{0}\"")]
    BadStatus(String),
    #[error("action must not be empty")]
    EmptyAction,
    #[error("{what} needs admin level (current: {current})")]
    NeedsAdmin { what: &'static str, current: String },
    #[error("only a superuser may call {0}")]
    NotSuperuser(&'static str),
    #[error("the personal data registry could not be read: {0}")]
    PersonalData(String),
    #[error("{operation} on {object} is refused: it {why}")]
    Evidence {
        operation: String,
        object: String,
        why: String,
    },
    #[error("{0}")]
    Unreadable(String),
    #[error("internal error: {0}")]
    Spi(#[from] pgrx::spi::Error),
    #[error("{0}")]
    Seal(#[from] seal::SealError),
}

impl SqlError for AuditError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            AuditError::Immutable { .. }
            | AuditError::NotOwner { .. }
            | AuditError::NeedsAdmin { .. }
            | AuditError::NotSuperuser(_)
            | AuditError::Evidence { .. }
            | AuditError::PersonalData(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            AuditError::Record(_) | AuditError::Unreadable(_) => {
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            AuditError::NotATable { .. } => ERRCODE_WRONG_OBJECT_TYPE,
            AuditError::NoColumn { .. } => ERRCODE_UNDEFINED_COLUMN,
            AuditError::Null(_) | AuditError::BadStatus(_) | AuditError::EmptyAction => {
                ERRCODE_INVALID_PARAMETER_VALUE
            }
            AuditError::Spi(_) => ERRCODE_INTERNAL_ERROR,
            AuditError::Seal(e) => e.sqlstate(),
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            AuditError::Immutable { .. } => {
                "Events leave the trail only through warden.purge_audit(), once they are older than warden.audit_retention.".into()
            }
            AuditError::Record(record::RecordError::NotInstalled) => "CREATE EXTENSION warden;".into(),
            AuditError::Record(record::RecordError::NeedsUpdate) => "ALTER EXTENSION warden UPDATE;".into(),
            AuditError::Record(record::RecordError::Altered) => {
                "Reinstall warden's audit tables after a dump: DROP EXTENSION warden; CREATE EXTENSION warden; (the drop needs warden.allow_evidence_drop while the trail holds events younger than warden.audit_retention).".into()
            }
            AuditError::NotATable { .. } => "warden audits ordinary and partitioned tables.".into(),
            AuditError::NotOwner { .. } => "Run it as the table's owner or a member of the owning role.".into(),
            AuditError::NoColumn { table, .. } => {
                format!("Name existing columns of {table}: SELECT warden.enable_audit('{table}', redact => '{{password_hash}}');")
            }
            AuditError::BadStatus(_) => "Use 'success', 'denied' or 'error'.".into(),
            AuditError::EmptyAction => "Name what happened, e.g. 'export_started'.".into(),
            AuditError::NeedsAdmin { .. } => {
                "Authenticate with a token of level admin (or run it as a superuser).".into()
            }
            AuditError::NotSuperuser(_) => "Run it as a superuser.".into(),
            AuditError::PersonalData(_) => "SELECT * FROM warden.verify_holds();".into(),
            AuditError::Unreadable(_) => "Check warden's tables and, with Citus, the cluster: SELECT * FROM warden.verify_holds(); SELECT * FROM citus_check_cluster_node_health();".into(),
            AuditError::Evidence { operation, .. } if operation.starts_with("DROP EXTENSION")
                || operation.starts_with("DROP SCHEMA")
                || operation.starts_with("DROP OWNED") => {
                "Purge the trail first (SELECT warden.purge_audit(); removes events older than warden.audit_retention), or, to destroy it knowingly, set warden.allow_evidence_drop = on in postgresql.conf and reload (the drop is then written to the server log).".into()
            }
            AuditError::Evidence { .. } => {
                "warden's own tables (schema warden) keep the evidence: nobody may empty, rewrite, unguard or drop them; storage parameters, tablespace and SET LOGGED stay allowed.".into()
            }
            AuditError::Seal(e) => return e.hint(),
            AuditError::Null(_) | AuditError::Spi(_) => return None,
        })
    }
}
crate::errors::sql_error!(AuditError);
