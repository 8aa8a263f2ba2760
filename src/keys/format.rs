//! The API key format: `wdn_<id>_<secret>`, 60 characters.
//!
//! - `wdn_`: a recognizable prefix (secret scanners and people can tell a warden key at a glance);
//! - `<id>`: 12 lowercase hex digits (48 random bits), the key's public id, shown in listings;
//! - `<secret>`: 43 base64url characters, 32 bytes (256 bits) from PostgreSQL's strong random source.
//!
//! Only the SHA-256 of the whole key and its display prefix (`wdn_<id>`) are stored. Pure logic, no
//! database: `cargo test --features pg15 --lib keys::format`. The random bytes come from the caller.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "wdn_";
pub const ID_LEN: usize = 12;
pub const SECRET_BYTES: usize = 32;
pub const SECRET_LEN: usize = 43;
pub const KEY_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN;
// the floor: at least 256 bits of secret
const _: () = assert!(SECRET_BYTES * 8 >= 256);

/// Random bytes a new key consumes: 6 for the id, 32 for the secret.
pub const RANDOM_BYTES: usize = ID_LEN / 2 + SECRET_BYTES;

/// A freshly minted key: the plaintext (returned once), and what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub plaintext: String,
    pub id: String,
    pub display_prefix: String,
    pub hash: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("not a warden API key (they start with {PREFIX})")]
    Prefix,
    #[error("API key has the wrong length (a warden key has {KEY_LEN} characters)")]
    Length,
    #[error("API key is malformed")]
    Malformed,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of the whole key text: what is stored and looked up.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Mints a key from `random` (RANDOM_BYTES bytes from a strong source).
pub fn mint(random: &[u8; RANDOM_BYTES]) -> NewKey {
    let id = hex(&random[..ID_LEN / 2]);
    let secret = URL_SAFE_NO_PAD.encode(&random[ID_LEN / 2..]);
    let plaintext = format!("{PREFIX}{id}_{secret}");
    NewKey {
        hash: hash(&plaintext),
        display_prefix: format!("{PREFIX}{id}"),
        id,
        plaintext,
    }
}

/// Checks the shape of a presented key and returns its public id. The key's authenticity is
/// decided by its hash, never by this.
pub fn parse(key: &str) -> Result<&str, KeyFormatError> {
    if !key.starts_with(PREFIX) {
        return Err(KeyFormatError::Prefix);
    }
    if key.len() != KEY_LEN {
        return Err(KeyFormatError::Length);
    }
    let id = &key[PREFIX.len()..PREFIX.len() + ID_LEN];
    let sep = key.as_bytes()[PREFIX.len() + ID_LEN];
    let secret = &key[PREFIX.len() + ID_LEN + 1..];
    let id_ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let mut decoded = [0u8; SECRET_BYTES + 2];
    let secret_ok = matches!(
        URL_SAFE_NO_PAD.decode_slice(secret, &mut decoded),
        Ok(SECRET_BYTES)
    ) && URL_SAFE_NO_PAD.encode(&decoded[..SECRET_BYTES]) == secret;
    if id_ok && sep == b'_' && secret_ok {
        Ok(id)
    } else {
        Err(KeyFormatError::Malformed)
    }
}

/// Equality of two hashes in time independent of where they differ.
pub fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; RANDOM_BYTES] {
        let mut r = [0u8; RANDOM_BYTES];
        for (i, b) in r.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add(i as u8).wrapping_mul(97);
        }
        r
    }

    #[test]
    fn a_minted_key_parses_and_stores_only_its_hash_and_prefix() {
        let k = mint(&random(1));
        assert_eq!(k.plaintext.len(), KEY_LEN);
        assert!(k.plaintext.starts_with("wdn_"));
        assert_eq!(parse(&k.plaintext), Ok(k.id.as_str()));
        assert_eq!(k.display_prefix, format!("wdn_{}", k.id));
        assert!(
            !k.display_prefix.contains(&k.plaintext[17..21]),
            "the prefix holds none of the secret"
        );
        assert_eq!(k.hash, hash(&k.plaintext));
        assert_ne!(mint(&random(2)).plaintext, k.plaintext);
    }

    #[test]
    fn at_least_256_bits_of_secret() {
        let k = mint(&random(3));
        let secret = &k.plaintext[PREFIX.len() + ID_LEN + 1..];
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), SECRET_BYTES);
    }

    #[test]
    fn truncated_padded_case_changed_or_foreign_keys_are_refused() {
        let k = mint(&random(4)).plaintext;
        assert_eq!(parse(&k[..KEY_LEN - 1]), Err(KeyFormatError::Length));
        assert_eq!(parse(&format!("{k}=")), Err(KeyFormatError::Length));
        assert_eq!(parse(&k.to_uppercase()), Err(KeyFormatError::Prefix));
        assert_eq!(parse("sk_live_abc"), Err(KeyFormatError::Prefix));
        assert_eq!(parse(""), Err(KeyFormatError::Prefix));
        let id_upper = format!("wdn_{}{}", k[4..16].to_uppercase(), &k[16..]);
        if id_upper != k {
            assert_eq!(parse(&id_upper), Err(KeyFormatError::Malformed));
        }
        let bad_sep = format!("{}-{}", &k[..16], &k[17..]);
        assert_eq!(parse(&bad_sep), Err(KeyFormatError::Malformed));
        let bad_char = format!("{}!{}", &k[..20], &k[21..]);
        assert_eq!(parse(&bad_char), Err(KeyFormatError::Malformed));
        // a case change inside the secret still parses, but it is another key: its hash differs
        let mut flipped = k.clone().into_bytes();
        let i = flipped[17..]
            .iter()
            .position(|b| b.is_ascii_alphabetic())
            .unwrap()
            + 17;
        flipped[i] ^= 0x20;
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(!ct_eq(&hash(&flipped), &hash(&k)));
    }

    #[test]
    fn constant_time_equality_is_equality() {
        let a = hash("a");
        let mut b = a;
        assert!(ct_eq(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!ct_eq(&a, &b));
    }
}
