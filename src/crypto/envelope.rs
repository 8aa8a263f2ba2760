//! The ciphertext format of `warden.encrypt` (issue 7) and the wrapping of data keys, AES-256-GCM.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib crypto::envelope`. Keys and nonces come
//! from the caller (PostgreSQL's strong random source).
//!
//! A ciphertext is a 32-byte header followed by the GCM output (ciphertext and 16-byte tag):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `WDN` and format version 1 |
//! | 4..20 | the key's id (a uuid: the keyring row, which names the tenant's key) |
//! | 20..24 | the key's version, big-endian u32 (rotation adds versions; old ones still decrypt) |
//! | 24..32 | reserved, zero |
//!
//! The nonce (96 random bits) follows the header (bytes 32..44). The GCM associated data is the
//! header and nonce followed by the caller's `aad`: a header edited to point at another key, or a
//! ciphertext moved to a row whose aad differs, fails authentication, never decrypts to garbage.

use crate::types::ident::Ident;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

pub const MAGIC: [u8; 4] = *b"WDN\x01";
pub const HEADER_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// The smallest ciphertext: header, nonce and tag around an empty plaintext.
pub const MIN_LEN: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// Which key (and which version of it) a ciphertext was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef {
    pub id: [u8; 16],
    pub version: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a warden ciphertext (no WDN version 1 header)")]
    NotOurs,
    #[error("ciphertext is truncated")]
    Truncated,
    #[error(
        "ciphertext or associated data does not authenticate (tampered, wrong key or wrong aad)"
    )]
    Authentication,
}

fn header(key: KeyRef) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..20].copy_from_slice(&key.id);
    h[20..24].copy_from_slice(&key.version.to_be_bytes());
    h
}

fn associated(prefix: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(prefix.len() + aad.len());
    a.extend_from_slice(prefix);
    a.extend_from_slice(aad);
    a
}

/// Encrypts `plaintext` under `key` (256 bits), labelled with `key_ref`, bound to `aad`.
pub fn seal(
    key: &[u8; 32],
    key_ref: KeyRef,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIN_LEN + plaintext.len());
    out.extend_from_slice(&header(key_ref));
    out.extend_from_slice(nonce);
    let cipher = Aes256Gcm::new(key.into());
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad: &associated(&out, aad),
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    out.extend_from_slice(&sealed);
    out
}

/// The key a ciphertext names (read before decryption, to find the key).
pub fn key_ref(ciphertext: &[u8]) -> Result<KeyRef, EnvelopeError> {
    if ciphertext.len() < 4 || ciphertext[..4] != MAGIC {
        return Err(EnvelopeError::NotOurs);
    }
    if ciphertext.len() < MIN_LEN {
        return Err(EnvelopeError::Truncated);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&ciphertext[4..20]);
    let mut v = [0u8; 4];
    v.copy_from_slice(&ciphertext[20..24]);
    Ok(KeyRef {
        id,
        version: u32::from_be_bytes(v),
    })
}

/// Decrypts and authenticates; `key` must be the key `key_ref(ciphertext)` names.
pub fn open(key: &[u8; 32], ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    key_ref(ciphertext)?;
    if ciphertext[24..HEADER_LEN].iter().any(|b| *b != 0) {
        return Err(EnvelopeError::Authentication);
    }
    let (prefix, sealed) = ciphertext.split_at(HEADER_LEN + NONCE_LEN);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            Nonce::from_slice(&prefix[HEADER_LEN..]),
            Payload {
                msg: sealed,
                aad: &associated(prefix, aad),
            },
        )
        .map_err(|_| EnvelopeError::Authentication)
}

/// The associated data of a wrapped data key: a label and the tenant the key belongs to. A uuid
/// tenant is bound by its 16 bytes, as before 0.6.0 (keys wrapped then still unwrap); any other
/// identifier by its length and text under another label, so the two forms never coincide.
fn wrap_aad(tenant: &Ident) -> Vec<u8> {
    match tenant.as_uuid() {
        Some(u) => {
            let mut a = Vec::with_capacity(31);
            a.extend_from_slice(b"warden data key");
            a.extend_from_slice(u.as_bytes());
            a
        }
        None => {
            let t = tenant.as_str().as_bytes();
            let mut a = Vec::with_capacity(20 + t.len());
            a.extend_from_slice(b"warden data key id");
            a.extend_from_slice(&(t.len() as u16).to_be_bytes());
            a.extend_from_slice(t);
            a
        }
    }
}

/// Wraps a data key under the master key, bound to the data key's identity and its tenant (so a
/// wrapped key copied to another keyring row or moved to another tenant does not unwrap).
pub fn wrap(
    master: &[u8; 32],
    data_key: &[u8; 32],
    key_ref: KeyRef,
    tenant: &Ident,
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    seal(master, key_ref, nonce, &wrap_aad(tenant), data_key)
}

/// Unwraps a data key; fails on a wrong master key, or a wrapped key moved to another identity or
/// tenant.
pub fn unwrap(
    master: &[u8; 32],
    wrapped: &[u8],
    key_ref: KeyRef,
    tenant: &Ident,
) -> Result<[u8; 32], EnvelopeError> {
    if self::key_ref(wrapped)? != key_ref {
        return Err(EnvelopeError::Authentication);
    }
    let k = open(master, wrapped, &wrap_aad(tenant))?;
    k.try_into().map_err(|_| EnvelopeError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const OTHER: [u8; 32] = [8; 32];
    const N: [u8; NONCE_LEN] = [1; NONCE_LEN];
    const R: KeyRef = KeyRef {
        id: [0xab; 16],
        version: 3,
    };

    #[test]
    fn round_trip_with_the_key_named_in_the_header() {
        let c = seal(&KEY, R, &N, b"row 42", b"4111 1111 1111 1111");
        assert_eq!(&c[..4], b"WDN\x01");
        assert_eq!(c.len(), MIN_LEN + 19);
        assert_eq!(key_ref(&c), Ok(R));
        assert_eq!(open(&KEY, &c, b"row 42").unwrap(), b"4111 1111 1111 1111");
        assert_eq!(open(&KEY, &seal(&KEY, R, &N, b"", b""), b"").unwrap(), b"");
        assert!(
            !c.windows(4).any(|w| w == b"4111"),
            "no plaintext in the ciphertext"
        );
    }

    #[test]
    fn any_changed_byte_wrong_aad_or_wrong_key_fails_authentication() {
        let c = seal(&KEY, R, &N, b"row 42", b"secret value");
        for i in 0..c.len() {
            let mut t = c.clone();
            t[i] ^= 0x01;
            let r = open(&KEY, &t, b"row 42");
            assert!(r.is_err(), "byte {i} changed and it still opened");
        }
        assert_eq!(
            open(&KEY, &c, b"row 43"),
            Err(EnvelopeError::Authentication)
        );
        assert_eq!(open(&KEY, &c, b""), Err(EnvelopeError::Authentication));
        assert_eq!(
            open(&OTHER, &c, b"row 42"),
            Err(EnvelopeError::Authentication)
        );
    }

    #[test]
    fn a_header_pointing_at_another_key_or_version_does_not_open() {
        let c = seal(&KEY, R, &N, b"", b"x");
        let mut other_version = c.clone();
        other_version[23] = 4;
        assert_eq!(key_ref(&other_version).unwrap().version, 4);
        assert_eq!(
            open(&KEY, &other_version, b""),
            Err(EnvelopeError::Authentication)
        );
    }

    #[test]
    fn swapped_rows_do_not_open_when_aad_binds_the_row() {
        let a = seal(&KEY, R, &N, b"row 1", b"alice");
        let b = seal(&KEY, R, &[2; NONCE_LEN], b"row 2", b"bob");
        assert!(open(&KEY, &a, b"row 2").is_err() && open(&KEY, &b, b"row 1").is_err());
    }

    #[test]
    fn foreign_and_truncated_input_is_refused() {
        assert_eq!(key_ref(b"hello"), Err(EnvelopeError::NotOurs));
        assert_eq!(open(&KEY, b"", b""), Err(EnvelopeError::NotOurs));
        let c = seal(&KEY, R, &N, b"", b"x");
        assert_eq!(
            open(&KEY, &c[..MIN_LEN - 1], b""),
            Err(EnvelopeError::Truncated)
        );
        assert_eq!(
            open(&KEY, &c[..c.len() - 1], b""),
            Err(EnvelopeError::Authentication)
        );
    }

    #[test]
    #[allow(non_snake_case)]
    fn data_keys_unwrap_only_with_the_master_key_and_their_identity() {
        let id = |s: &str| Ident::parse(s).unwrap();
        let a = id("0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a");
        let b = id("0b0b0b0b-0b0b-0b0b-0b0b-0b0b0b0b0b0b");
        let (A, B) = (&a, &b);
        let w = wrap(&KEY, &OTHER, R, A, &N);
        assert_eq!(unwrap(&KEY, &w, R, A), Ok(OTHER));
        assert_eq!(unwrap(&OTHER, &w, R, A), Err(EnvelopeError::Authentication));
        let elsewhere = KeyRef { version: 1, ..R };
        assert_eq!(
            unwrap(&KEY, &w, elsewhere, A),
            Err(EnvelopeError::Authentication)
        );
        assert_eq!(
            unwrap(&KEY, &w, R, B),
            Err(EnvelopeError::Authentication),
            "a wrapped key moved to another tenant does not unwrap"
        );
        // identifiers of other kinds: bound by their exact text, never equal to a uuid's binding
        let (t42, t042, org) = (id("42"), id("042"), id("org_2abcXYZ9kQ"));
        let w42 = wrap(&KEY, &OTHER, R, &t42, &N);
        assert_eq!(unwrap(&KEY, &w42, R, &t42), Ok(OTHER));
        for other in [&t042, &org, A] {
            assert_eq!(
                unwrap(&KEY, &w42, R, other),
                Err(EnvelopeError::Authentication),
                "{other}"
            );
        }
        assert_ne!(wrap_aad(&t42), wrap_aad(&id("0000002a")));
        // the uuid binding is the one of 0.5.0: label and 16 bytes
        assert_eq!(wrap_aad(A).len(), 31);
        assert!(
            !w.windows(8).any(|x| x == &OTHER[..8]),
            "the data key is not in the wrapping"
        );
    }

    #[test]
    fn a_nist_gcm_vector() {
        // AES-256-GCM, key and IV zero, empty plaintext and aad (McGrew & Viega test case 13): tag
        // 530f8afbc74536b9a963b4f1c4cb738b. Checked through the raw cipher this module wraps.
        let cipher = Aes256Gcm::new(&[0u8; 32].into());
        let tag = cipher
            .encrypt(Nonce::from_slice(&[0u8; 12]), &b""[..])
            .unwrap();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "530f8afbc74536b9a963b4f1c4cb738b");
    }
}
