//! Tenant and actor identifiers, as real schemas and identity providers name them: a uuid
//! (Keycloak, Entra ID, PropelAuth, Supabase), a number (Rails and Django primary keys, Citus's
//! `company_id`) or a provider's text id (Clerk's `org_2abc...`, Auth0's `auth0|...`).
//!
//! An identifier is 1 to [`MAX_LEN`] bytes of UTF-8 without control characters, compared
//! exactly: no case folding, no trimming, `"042"` is not `"42"`. One normalization only: a uuid
//! written in its hyphenated form (8-4-4-4-12 hex digits) is kept in lower case, whatever case the
//! token or the caller used, so that it names one tenant. A JSON integer in a token is its decimal
//! text.
//!
//! Against a tenant column the identifier converts to the column's type exactly or not at all
//! ([`Ident::as_uuid`], [`Ident::as_i64`], [`Ident::as_i32`]): a bigint column matches only the
//! canonical decimal form (`42`, `-7`; never `042`, `+42`, ` 42` or `4.2e1`), a uuid column only
//! the hyphenated form; anything else matches no row.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib types::ident`.

use std::fmt;
use std::sync::Arc;

/// Longest identifier accepted, in bytes.
pub const MAX_LEN: usize = 255;

/// A validated, normalized identifier (cheap to clone: a context is read by every statement).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("is empty")]
    Empty,
    #[error("is {0} bytes long; at most {MAX_LEN} are accepted")]
    TooLong(usize),
    #[error("contains a control character (U+{0:04X})")]
    Control(u32),
    #[error("is {0}, not a string or an integer")]
    NotStringOrInteger(&'static str),
}

impl Ident {
    /// Validates and normalizes `s`.
    pub fn parse(s: &str) -> Result<Ident, IdentError> {
        if s.is_empty() {
            return Err(IdentError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(IdentError::TooLong(s.len()));
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(IdentError::Control(c as u32));
        }
        if is_hyphenated_uuid(s) {
            return Ok(Ident(s.to_ascii_lowercase().into()));
        }
        Ok(Ident(s.into()))
    }

    /// An identifier from a JSON value in a token: a string, or an integer (its decimal text).
    /// Floats, booleans, null, arrays and objects are refused.
    pub fn from_json(v: &serde_json::Value) -> Result<Ident, IdentError> {
        match v {
            serde_json::Value::String(s) => Ident::parse(s),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                Ident::parse(&n.to_string())
            }
            serde_json::Value::Number(_) => {
                Err(IdentError::NotStringOrInteger("a non-integer number"))
            }
            serde_json::Value::Bool(_) => Err(IdentError::NotStringOrInteger("a boolean")),
            serde_json::Value::Null => Err(IdentError::NotStringOrInteger("null")),
            serde_json::Value::Array(_) => Err(IdentError::NotStringOrInteger("an array")),
            serde_json::Value::Object(_) => Err(IdentError::NotStringOrInteger("an object")),
        }
    }

    /// The identifier of a uuid.
    pub fn from_uuid(u: &uuid::Uuid) -> Ident {
        Ident(u.hyphenated().to_string().into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0.to_string()
    }

    /// As a uuid, when it is one in the hyphenated form.
    pub fn as_uuid(&self) -> Option<uuid::Uuid> {
        if is_hyphenated_uuid(&self.0) {
            uuid::Uuid::try_parse(&self.0).ok()
        } else {
            None
        }
    }

    /// As a bigint, when it is one in canonical decimal form.
    pub fn as_i64(&self) -> Option<i64> {
        let n: i64 = self.0.parse().ok()?;
        (n.to_string() == *self.0).then_some(n)
    }

    /// As an integer, when it is one in canonical decimal form.
    pub fn as_i32(&self) -> Option<i32> {
        self.as_i64().and_then(|n| i32::try_from(n).ok())
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Ident {
    type Err = IdentError;
    fn from_str(s: &str) -> Result<Ident, IdentError> {
        Ident::parse(s)
    }
}

fn is_hyphenated_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_compared_exactly() {
        for s in [
            "42",
            "042",
            " 42",
            "42 ",
            "org_2abcXYZ9kQ",
            "ORG_2abcxyz9kq",
            "auth0|5f7c",
            "user_2NQ8xk1Lr3",
            "é-tenant",
        ] {
            assert_eq!(Ident::parse(s).unwrap().as_str(), s, "kept as given: {s:?}");
        }
        assert_ne!(Ident::parse("42").unwrap(), Ident::parse("042").unwrap());
        assert_ne!(
            Ident::parse("org_A").unwrap(),
            Ident::parse("org_a").unwrap()
        );
    }

    #[test]
    fn a_hyphenated_uuid_is_lower_cased_and_nothing_else() {
        let up = Ident::parse("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        assert_eq!(up.as_str(), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
        assert_eq!(
            up,
            Ident::parse("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()
        );
        assert!(up.as_uuid().is_some());
        // other spellings of a uuid are text, and no uuid
        for s in [
            "A0EEBC999C0B4EF8BB6D6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ] {
            let i = Ident::parse(s).unwrap();
            assert_eq!(i.as_str(), s);
            assert_eq!(i.as_uuid(), None, "{s}");
        }
    }

    #[test]
    fn bad_identifiers_are_refused() {
        assert_eq!(Ident::parse(""), Err(IdentError::Empty));
        assert_eq!(
            Ident::parse(&"x".repeat(256)),
            Err(IdentError::TooLong(256))
        );
        assert!(Ident::parse(&"x".repeat(255)).is_ok());
        assert_eq!(
            Ident::parse(&"é".repeat(128)),
            Err(IdentError::TooLong(256)),
            "bytes, not characters"
        );
        assert_eq!(
            Ident::parse(&"x".repeat(10240)),
            Err(IdentError::TooLong(10240))
        );
        assert_eq!(Ident::parse("a\0b"), Err(IdentError::Control(0)));
        assert_eq!(Ident::parse("a\nb"), Err(IdentError::Control(10)));
        assert_eq!(Ident::parse("tab\t"), Err(IdentError::Control(9)));
        assert_eq!(Ident::parse("del\u{7f}"), Err(IdentError::Control(0x7f)));
        assert_eq!(Ident::parse("c1\u{85}"), Err(IdentError::Control(0x85)));
    }

    #[test]
    fn json_strings_and_integers_only() {
        use serde_json::json;
        assert_eq!(Ident::from_json(&json!(42)).unwrap().as_str(), "42");
        assert_eq!(Ident::from_json(&json!("42")).unwrap().as_str(), "42");
        assert_eq!(Ident::from_json(&json!(-7)).unwrap().as_str(), "-7");
        assert_eq!(
            Ident::from_json(&json!(u64::MAX)).unwrap().as_str(),
            "18446744073709551615"
        );
        assert_eq!(
            Ident::from_json(&json!(4.2)),
            Err(IdentError::NotStringOrInteger("a non-integer number"))
        );
        assert_eq!(
            Ident::from_json(&json!(42.0)),
            Err(IdentError::NotStringOrInteger("a non-integer number"))
        );
        assert_eq!(
            Ident::from_json(&json!(true)),
            Err(IdentError::NotStringOrInteger("a boolean"))
        );
        assert_eq!(
            Ident::from_json(&json!(null)),
            Err(IdentError::NotStringOrInteger("null"))
        );
        assert_eq!(
            Ident::from_json(&json!(["a"])),
            Err(IdentError::NotStringOrInteger("an array"))
        );
        assert_eq!(Ident::from_json(&json!("")), Err(IdentError::Empty));
    }

    #[test]
    fn conversions_are_exact_or_nothing() {
        let p = |s: &str| Ident::parse(s).unwrap();
        assert_eq!(p("42").as_i64(), Some(42));
        assert_eq!(p("-7").as_i64(), Some(-7));
        assert_eq!(p("0").as_i64(), Some(0));
        for s in [
            "042",
            "+42",
            " 42",
            "42 ",
            "4.2e1",
            "0x2a",
            "-0",
            "org_2abc",
            "9223372036854775808",
        ] {
            assert_eq!(p(s).as_i64(), None, "{s}");
        }
        assert_eq!(p("9223372036854775807").as_i64(), Some(i64::MAX));
        assert_eq!(p("2147483647").as_i32(), Some(i32::MAX));
        assert_eq!(p("2147483648").as_i32(), None, "beyond int4");
        assert_eq!(p("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").as_i64(), None);
        assert_eq!(p("42").as_uuid(), None);
        let u = uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
        assert_eq!(
            Ident::from_uuid(&u),
            p("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
        );
    }
}
