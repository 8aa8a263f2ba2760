//! Data classification: `warden.classify`, the requirements of each level, and the PHI read log.
//! See README, "Data classification".
//!
//! - `api`: `warden.classify`, and the refusals of what would weaken a classified table.
//! - `phi`: the executor hooks that record every read of a PHI table.
//!
//! Levels `PUBLIC < INTERNAL < CONFIDENTIAL < PHI`; a table's effective level is its own
//! classification, else its schema's, else none; CONFIDENTIAL and PHI tables must be protected and
//! audited, and PHI needs warden preloaded (its reads are logged by an executor hook).
//! `cargo test --features pg15 --lib classify`.
//!
//! Floor 4, capability: uses the floors below; never another capability.
pub mod api;
pub mod phi;

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Classification {
    Public,
    Internal,
    Confidential,
    Phi,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a classification (PUBLIC, INTERNAL, CONFIDENTIAL or PHI)")]
pub struct UnknownClassification(pub String);

impl Classification {
    pub const ALL: [Classification; 4] = [
        Classification::Public,
        Classification::Internal,
        Classification::Confidential,
        Classification::Phi,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "PUBLIC",
            Classification::Internal => "INTERNAL",
            Classification::Confidential => "CONFIDENTIAL",
            Classification::Phi => "PHI",
        }
    }

    /// Whether a table at this level must be protected and audited.
    pub fn needs_protection(self) -> bool {
        self >= Classification::Confidential
    }

    /// Whether its reads are logged (an executor hook: warden must be preloaded).
    pub fn logs_reads(self) -> bool {
        self == Classification::Phi
    }
}

impl FromStr for Classification {
    type Err = UnknownClassification;

    /// Exact, upper-case names, as the issue writes them.
    fn from_str(s: &str) -> Result<Classification, UnknownClassification> {
        Classification::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownClassification(s.to_owned()))
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A table's effective level: its own classification wins over its schema's.
pub fn effective(
    table: Option<Classification>,
    schema: Option<Classification>,
) -> Option<Classification> {
    table.or(schema)
}

/// What keeps a table from being classified at `level` (empty: nothing): the fix for each in the
/// order a DBA would apply them.
pub fn missing(
    level: Classification,
    protected: bool,
    audited: bool,
    preloaded: bool,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    if level.needs_protection() && !protected {
        out.push("protect it: SELECT warden.protect_table(...)");
    }
    if level.needs_protection() && !audited {
        out.push("audit it: SELECT warden.enable_audit(...)");
    }
    if level.logs_reads() && !preloaded {
        out.push("add warden to shared_preload_libraries and restart (PHI reads are logged by an executor hook)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_exactly_and_order() {
        for c in Classification::ALL {
            assert_eq!(c.as_str().parse(), Ok(c));
        }
        for bad in ["phi", "Public", " PHI", "SECRET", ""] {
            assert!(bad.parse::<Classification>().is_err(), "{bad:?}");
        }
        assert!(Classification::Public < Classification::Internal);
        assert!(Classification::Confidential < Classification::Phi);
    }

    #[test]
    fn a_table_inherits_its_schemas_level_unless_classified_itself() {
        use Classification::*;
        assert_eq!(effective(None, Some(Confidential)), Some(Confidential));
        assert_eq!(
            effective(Some(Public), Some(Phi)),
            Some(Public),
            "the table's own wins"
        );
        assert_eq!(effective(None, None), None);
    }

    #[test]
    fn confidential_and_phi_need_protection_and_audit_and_phi_a_preload() {
        use Classification::*;
        assert!(missing(Public, false, false, false).is_empty());
        assert!(missing(Internal, false, false, false).is_empty());
        assert_eq!(missing(Confidential, false, false, false).len(), 2);
        assert!(missing(Confidential, true, true, false).is_empty());
        assert_eq!(
            missing(Phi, true, true, false).len(),
            1,
            "PHI without preload: fail closed"
        );
        assert_eq!(
            missing(Phi, true, false, true),
            vec!["audit it: SELECT warden.enable_audit(...)"]
        );
        assert!(missing(Phi, true, true, true).is_empty());
    }
}
