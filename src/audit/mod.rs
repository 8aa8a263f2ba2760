//! The audit trail's pure logic: the canonical serialization of an event and the hash chain over
//! sealed events, with their verification. The SQL API (events table, triggers, the sealing worker,
//! `verify_audit`, digests) builds on these; see README, "Audit trail" once it lands.

pub mod canonical;
pub mod chain;
pub mod queue;
pub mod redact;
