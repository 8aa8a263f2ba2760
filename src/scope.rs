//! Scopes of API keys and tokens, `namespace:resource_type:operation`, each segment a name or `*`, operations
//! `read`, `write`, `delete`, `admin` with the implication order of levels.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib scope`.
//!
//! Segments match whole: `docs:*:read` allows namespace `docs` and never `docs_admin` (no prefix or
//! pattern matching anywhere). A set of scopes allows what any one of them allows, and one set
//! covers another when each scope of the other is covered by one scope of the first (how a key is
//! kept from carrying wider scopes than its creator).
//!
//! Floor 2, authentication: uses the ground.

use std::fmt;
use std::str::FromStr;

use crate::types::level::Level;

/// Longest segment accepted (a PostgreSQL identifier's length).
pub const MAX_SEGMENT: usize = 63;

/// A namespace or resource type: a name, or `*` for any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Any,
    Name(String),
}

impl Segment {
    fn matches(&self, name: &str) -> bool {
        match self {
            Segment::Any => true,
            Segment::Name(n) => n == name,
        }
    }

    /// Whether every name this segment matches, `self` matches too.
    fn covers(&self, other: &Segment) -> bool {
        match (self, other) {
            (Segment::Any, _) => true,
            (Segment::Name(a), Segment::Name(b)) => a == b,
            (Segment::Name(_), Segment::Any) => false,
        }
    }
}

/// One scope. `operation` None means `*` (every operation, as `admin` implies them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub namespace: Segment,
    pub resource_type: Segment,
    pub operation: Option<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope \"{0}\" is not namespace:resource_type:operation")]
    Shape(String),
    #[error("scope \"{scope}\": segment \"{segment}\" must be * or a lower-case name (a-z, 0-9, _, -, .; at most 63 characters)")]
    Segment { scope: String, segment: String },
    #[error("scope \"{scope}\": operation \"{operation}\" is not read, write, delete, admin or *")]
    Operation { scope: String, operation: String },
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SEGMENT
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        })
}

impl FromStr for Scope {
    type Err = ScopeError;

    /// Exact syntax: three segments separated by `:`, no spaces, lower case.
    fn from_str(s: &str) -> Result<Scope, ScopeError> {
        let parts: Vec<&str> = s.split(':').collect();
        let [ns, rt, op] = parts.as_slice() else {
            return Err(ScopeError::Shape(s.to_owned()));
        };
        let segment = |x: &str| -> Result<Segment, ScopeError> {
            if x == "*" {
                Ok(Segment::Any)
            } else if valid_name(x) {
                Ok(Segment::Name(x.to_owned()))
            } else {
                Err(ScopeError::Segment {
                    scope: s.to_owned(),
                    segment: x.to_owned(),
                })
            }
        };
        let operation = if *op == "*" {
            None
        } else {
            Some(op.parse::<Level>().map_err(|_| ScopeError::Operation {
                scope: s.to_owned(),
                operation: (*op).to_owned(),
            })?)
        };
        Ok(Scope {
            namespace: segment(ns)?,
            resource_type: segment(rt)?,
            operation,
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seg = |s: &Segment| match s {
            Segment::Any => "*".to_owned(),
            Segment::Name(n) => n.clone(),
        };
        write!(
            f,
            "{}:{}:{}",
            seg(&self.namespace),
            seg(&self.resource_type),
            self.operation.map_or("*", Level::as_str)
        )
    }
}

impl Scope {
    /// Whether this scope allows `operation` on `resource_type` in `namespace`.
    pub fn allows(&self, namespace: &str, resource_type: &str, operation: Level) -> bool {
        self.namespace.matches(namespace)
            && self.resource_type.matches(resource_type)
            && self.operation.is_none_or(|op| op.implies(operation))
    }

    /// Whether everything `other` allows, this scope allows too.
    pub fn covers(&self, other: &Scope) -> bool {
        self.namespace.covers(&other.namespace)
            && self.resource_type.covers(&other.resource_type)
            && match (self.operation, other.operation) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a.implies(b),
            }
    }
}

/// Parses a list of scopes; the first bad one is the error.
pub fn parse_all<S: AsRef<str>>(scopes: &[S]) -> Result<Vec<Scope>, ScopeError> {
    scopes.iter().map(|s| s.as_ref().parse()).collect()
}

/// Whether any scope of `set` allows the operation.
pub fn set_allows(set: &[Scope], namespace: &str, resource_type: &str, operation: Level) -> bool {
    set.iter()
        .any(|s| s.allows(namespace, resource_type, operation))
}

/// The first scope of `wanted` that no scope of `held` covers, if any.
pub fn first_uncovered<'a>(held: &[Scope], wanted: &'a [Scope]) -> Option<&'a Scope> {
    wanted.iter().find(|w| !held.iter().any(|h| h.covers(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Scope {
        x.parse().unwrap()
    }

    #[test]
    fn scopes_parse_exactly_and_print_back() {
        for ok in [
            "docs:invoices:read",
            "docs:*:write",
            "*:*:*",
            "billing-v2:line.items:admin",
            "a:b:delete",
        ] {
            assert_eq!(s(ok).to_string(), ok);
        }
        for bad in [
            "docs:read",
            "docs:a:b:read",
            "",
            "::",
            "docs::read",
            "Docs:a:read",
            "docs:a:READ",
            "docs:a:readonly",
            " docs:a:read",
            "docs:a:read ",
            "docs:a*:read",
            "docs:%:read",
        ] {
            assert!(bad.parse::<Scope>().is_err(), "{bad:?} parsed");
        }
        assert!(format!("{}:a:read", "x".repeat(64))
            .parse::<Scope>()
            .is_err());
    }

    #[test]
    fn a_wildcard_never_matches_a_longer_name() {
        let read_docs = s("docs:*:read");
        assert!(read_docs.allows("docs", "invoices", Level::Read));
        assert!(!read_docs.allows("docs_admin", "invoices", Level::Read));
        assert!(!read_docs.allows("doc", "invoices", Level::Read));
        assert!(!read_docs.allows("docs.admin", "invoices", Level::Read));
        assert!(!s("docs:inv:read").allows("docs", "invoices", Level::Read));
    }

    #[test]
    fn operations_imply_like_levels() {
        let w = s("docs:*:write");
        assert!(w.allows("docs", "x", Level::Read) && w.allows("docs", "x", Level::Write));
        assert!(!w.allows("docs", "x", Level::Delete) && !w.allows("docs", "x", Level::Admin));
        assert!(
            !s("docs:*:read").allows("docs", "x", Level::Write),
            "docs:*:read writing"
        );
        assert!(s("docs:*:*").allows("docs", "x", Level::Admin));
        assert!(s("docs:*:admin").allows("docs", "x", Level::Delete));
    }

    #[test]
    fn a_set_allows_what_one_of_its_scopes_allows() {
        let set = parse_all(&["docs:invoices:read", "crm:*:write"]).unwrap();
        assert!(set_allows(&set, "crm", "contacts", Level::Write));
        assert!(set_allows(&set, "docs", "invoices", Level::Read));
        assert!(!set_allows(&set, "docs", "invoices", Level::Write));
        assert!(
            !set_allows(&[], "docs", "invoices", Level::Read),
            "no scope, nothing allowed"
        );
    }

    #[test]
    fn a_key_cannot_carry_wider_scopes_than_its_creator() {
        let creator = parse_all(&["docs:*:write", "crm:contacts:read"]).unwrap();
        let narrower =
            parse_all(&["docs:invoices:read", "docs:*:write", "crm:contacts:read"]).unwrap();
        assert_eq!(first_uncovered(&creator, &narrower), None);
        for wider in [
            "docs:*:delete",
            "docs:*:*",
            "*:invoices:read",
            "crm:*:read",
            "crm:contacts:write",
            "docs_admin:x:read",
        ] {
            let w = parse_all(&[wider]).unwrap();
            assert_eq!(first_uncovered(&creator, &w), Some(&w[0]), "{wider} passed");
        }
        let everything = parse_all(&["*:*:*"]).unwrap();
        assert_eq!(first_uncovered(&everything, &creator), None);
    }
}
