//! Anonymization methods and keyed hashes (pseudonyms) of personal data.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib privacy::method`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What replaces a value anonymized with the `redact` method.
pub const REDACTED: &str = "[redacted]";
/// Length of a pseudonym: 64 lowercase hex digits (HMAC-SHA256).
pub const PSEUDONYM_LEN: usize = 64;

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

/// The pseudonym key: `warden.pseudonym_key` when set, otherwise derived from the JWT secret
/// (HMAC-SHA256 of a fixed label under it), so that it is never the secret itself. None when
/// neither is set.
pub fn derive_key(pseudonym_key: &[u8], jwt_secret: &[u8]) -> Option<Vec<u8>> {
    if !pseudonym_key.is_empty() {
        return Some(pseudonym_key.to_vec());
    }
    if jwt_secret.is_empty() {
        return None;
    }
    let mut m = HmacSha256::new_from_slice(jwt_secret).expect("HMAC accepts any key length");
    m.update(b"warden pseudonym key v1");
    Some(m.finalize().into_bytes().to_vec())
}

/// The keyed hash of `value`: HMAC-SHA256 under `key`, as 64 lowercase hex digits.
pub fn pseudonym(key: &[u8], value: &[u8]) -> String {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(value);
    let mut out = String::with_capacity(PSEUDONYM_LEN);
    for b in m.finalize().into_bytes() {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
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

    #[test]
    fn pseudonyms_are_keyed_stable_and_hex() {
        let k = derive_key(b"", b"a-jwt-secret-of-at-least-32-bytes!!").unwrap();
        let a = pseudonym(&k, b"ada@example.com");
        assert_eq!(a.len(), PSEUDONYM_LEN);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            a,
            pseudonym(&k, b"ada@example.com"),
            "stable: joins keep working"
        );
        assert_ne!(a, pseudonym(&k, b"ada@example.org"));
        let other = derive_key(b"another key", b"a-jwt-secret-of-at-least-32-bytes!!").unwrap();
        assert_ne!(a, pseudonym(&other, b"ada@example.com"), "keyed");
        // RFC 4231 test case 2
        assert_eq!(
            pseudonym(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_derived_key_is_not_the_secret_and_needs_one() {
        let secret = b"a-jwt-secret-of-at-least-32-bytes!!";
        let k = derive_key(b"", secret).unwrap();
        assert_ne!(k.as_slice(), secret.as_slice());
        assert_eq!(
            derive_key(b"explicit", secret).unwrap(),
            b"explicit".to_vec()
        );
        assert_eq!(derive_key(b"", b""), None);
    }
}
