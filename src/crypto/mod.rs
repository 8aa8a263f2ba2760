//! Encryption at rest (issue 7): so far the pure logic only, tested but not yet reachable from SQL.
//!
//! - `envelope`: the AES-256-GCM ciphertext format (version header naming the key and its
//!   version, nonce, aad binding) and the wrapping of data keys under the master key.
//!
//! The keyring, `warden.encrypt`/`decrypt`, rotation and crypto-shredding are not built yet.
#![cfg_attr(not(test), allow(dead_code))]

pub mod envelope;
