//! API keys (issue 7): so far the pure logic only, tested but not yet reachable from SQL.
//!
//! - `format`: the key format, minting from strong random bytes, parsing, hashing, constant-time
//!   comparison.
//! - `scope`: `namespace:resource_type:operation` scopes, matching and coverage.
//!
//! The SQL API (`create_api_key`, `authenticate_key`, `key_allows`, the views) is not built yet.
#![cfg_attr(not(test), allow(dead_code))]

pub mod format;
pub mod scope;
