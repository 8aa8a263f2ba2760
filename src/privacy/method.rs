//! Anonymization methods of personal data (the keyed hash they share with the audit trail is
//! `subjects::pseudonym`).
//!
//! Pure logic, no database: `cargo test --features pg15 --lib privacy::method`.

pub use crate::catalog::subjects::{derive_key, pseudonym, PSEUDONYM_LEN};

/// What replaces a value anonymized with the `redact` method.
pub const REDACTED: &str = "[redacted]";

/// How `warden.erase_subject` anonymizes a registered column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Set to NULL.
    Null,
    /// Set to [`REDACTED`].
    Redact,
    /// Set to the keyed hash of the value: the same value gives the same pseudonym, so joins
    /// on the column keep working.
    Hash,
    /// Set to a constant (`constant:<value>`), cast to the column's type.
    Constant(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not an anonymization method")]
pub struct UnknownMethod(pub String);

impl std::str::FromStr for Method {
    type Err = UnknownMethod;

    /// `null`, `redact`, `hash` or `constant:<value>` (exact, lower-case names).
    fn from_str(s: &str) -> Result<Method, UnknownMethod> {
        match s {
            "null" => Ok(Method::Null),
            "redact" => Ok(Method::Redact),
            "hash" => Ok(Method::Hash),
            _ => match s.strip_prefix("constant:") {
                Some(v) => Ok(Method::Constant(v.to_owned())),
                None => Err(UnknownMethod(s.to_owned())),
            },
        }
    }
}

impl Method {
    /// The form stored in `warden.personal_data.method`.
    pub fn as_stored(&self) -> String {
        match self {
            Method::Null => "null".into(),
            Method::Redact => "redact".into(),
            Method::Hash => "hash".into(),
            Method::Constant(v) => format!("constant:{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_exactly() {
        assert_eq!("null".parse(), Ok(Method::Null));
        assert_eq!("redact".parse(), Ok(Method::Redact));
        assert_eq!("hash".parse(), Ok(Method::Hash));
        assert_eq!("constant:n/a".parse(), Ok(Method::Constant("n/a".into())));
        assert_eq!("constant:".parse(), Ok(Method::Constant(String::new())));
        for bad in ["NULL", " hash", "Hash", "constant", "mask", ""] {
            assert_eq!(
                bad.parse::<Method>(),
                Err(UnknownMethod(bad.into())),
                "{bad}"
            );
        }
        for m in ["null", "redact", "hash", "constant:x:y"] {
            assert_eq!(m.parse::<Method>().unwrap().as_stored(), m);
        }
    }
}
