//! API keys: scoped, stored only as SHA-256 hashes, revocable. See README, "API keys".
//!
//! - `format`: the key format, minting from strong random bytes, parsing, hashing, constant-time
//!   comparison (pure logic).
//! - `api`: the SQL functions (`create_api_key`, `authenticate_key`, `revoke_api_key`,
//!   `key_allows`, `tenant_with_scope`).
//!
//! Floor 4, capability: uses the floors below; never another capability.

pub mod api;
pub mod format;
