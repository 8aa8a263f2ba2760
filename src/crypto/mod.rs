//! Encryption at rest: AES-256-GCM with tenant keys wrapped by a master key outside the database,
//! rotation, tenant secrets, and crypto-shredding of a data subject's key. See README, "Encryption".
//!
//! - `envelope`: the ciphertext format (version header naming the key and its version, nonce, aad
//!   binding) and the wrapping of data keys under the master key (pure logic).
//! - `api`: the keyring and the SQL functions.
//!
//! Floor 4, capability: uses the floors below; never another capability.

pub mod api;
pub mod envelope;
