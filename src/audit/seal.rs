//! Sealing: committed events move from `warden.audit_pending` into `warden.audit_events`, where
//! they get consecutive ids and their place in the hash chain.
//!
//! One sealer at a time: it takes `SHARE ROW EXCLUSIVE` on `warden.audit_events` (self-conflicting;
//! no application role holds a privilege that could take it), reads the head of the chain, deletes
//! a batch of the pending rows its snapshot sees (committed ones, and its own transaction's), and
//! inserts them numbered and chained, in the order they occurred (ties by their position in the
//! pending table). The delete and the insert commit together, so an event is sealed exactly once;
//! a crash in between leaves it pending for the next pass.
//!
//! The model is "asynchronous sealing of committed events by a background worker in commit order":
//! events of a transaction that commits after a pass has begun are sealed by a later pass, so the
//! chain is ordered by when the sealer first saw an event committed, and within a pass by the time
//! the event occurred (ties by position in the pending table).

use std::cell::Cell;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

use super::canonical::{CanonicalError, Event};
use super::chain::{link, Hash, GENESIS};
use super::jsonb::JsonbDatum;
use super::record::{pending_relid, PG_EPOCH_OFFSET_US};
use crate::errors::SqlError;

/// Events per sealing transaction.
pub const BATCH: i64 = 5000;

thread_local! {
    /// Set while this backend seals: the immutability trigger lets it delete pending rows.
    static SEALING: Cell<bool> = const { Cell::new(false) };
    /// Set while this backend purges: the immutability trigger lets it delete old events.
    static PURGING: Cell<bool> = const { Cell::new(false) };
}

pub fn sealing() -> bool {
    SEALING.get()
}

pub fn purging() -> bool {
    PURGING.get()
}

/// Clears both flags (at abort, in case an error skipped the guards' drop).
pub fn reset_flags() {
    SEALING.set(false);
    PURGING.set(false);
}

/// Sets `flag` for the duration of `f`.
pub fn with_flag<R>(flag: &'static std::thread::LocalKey<Cell<bool>>, f: impl FnOnce() -> R) -> R {
    crate::errors::with_flag(flag, f)
}

pub fn with_purging<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&PURGING, f)
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the audit trail is not installed in this database")]
    NotInstalled,
    #[error("sealing needs READ COMMITTED: a transaction snapshot would not see the chain's current head")]
    Isolation,
    #[error("an event cannot be serialized: {0}")]
    Canonical(#[from] CanonicalError),
    #[error("internal error: {0}")]
    Spi(#[from] pgrx::spi::Error),
    #[error("{0}")]
    Worker(String),
}

impl SqlError for SealError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        match self {
            SealError::NotInstalled | SealError::Isolation => {
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            _ => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            SealError::NotInstalled => Some("CREATE EXTENSION warden;".into()),
            SealError::Isolation => {
                Some("Call warden.seal_audit() in a READ COMMITTED transaction.".into())
            }
            _ => None,
        }
    }
}
crate::errors::sql_error!(SealError);

/// The chain's head: the last sealed event, else the last purge checkpoint, else (0, GENESIS).
pub fn head(c: &pgrx::spi::SpiClient<'_>) -> Result<(i64, Hash), pgrx::spi::Error> {
    for sql in [
        "SELECT id, hash FROM warden.audit_events ORDER BY id DESC LIMIT 1",
        "SELECT id, hash FROM warden.audit_checkpoints ORDER BY id DESC LIMIT 1",
    ] {
        let t = c.select(sql, Some(1), &[])?;
        if !t.is_empty() {
            let (id, hash) = t.first().get_two::<i64, Vec<u8>>()?;
            if let (Some(id), Some(hash)) = (id, hash) {
                return Ok((id, to_hash(&hash)));
            }
        }
    }
    Ok((0, GENESIS))
}

pub fn to_hash(b: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    let n = b.len().min(32);
    h[..n].copy_from_slice(&b[..n]);
    h
}

/// Seals every pending event this transaction sees in blocks `lo..=hi` of the pending table, in
/// batches. Returns how many were sealed.
pub fn seal_range(lo: u32, hi: u32) -> Result<i64, SealError> {
    if pending_relid() == pg_sys::InvalidOid {
        return Err(SealError::NotInstalled);
    }
    // SAFETY: reads the transaction's isolation level.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        return Err(SealError::Isolation);
    }
    let mut total = 0;
    loop {
        let n = with_flag(&SEALING, || seal_batch(BATCH, lo, hi))?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}

/// Seals every pending event this transaction sees.
pub fn seal_all() -> Result<i64, SealError> {
    seal_range(0, u32::MAX - 1)
}

/// The batch: committed pending events in the table's physical order (cheap: no sort of the whole
/// table, whatever its backlog), ordered in Rust by time and position. The jsonb values come as
/// they are stored: serialized canonically from their binary form (audit::jsonb), as the verifier
/// does, with no text round trip.
const TAKE: &str =
    "SELECT ctid::text, occurred_at, tenant::text, actor::text, action, resource_type, resource_id, \
            changes, status, context \
       FROM warden.audit_pending WHERE ctid >= $2::tid AND ctid < $3::tid LIMIT $1";

/// Moves the batch: each pending row, by its position, into audit_events with its id and hashes.
/// The jsonb values are copied as they are (not re-parsed from the text that was hashed; jsonb's
/// text form is a fixed point, so verification reads back the same text).
const PUT: &str = "WITH d AS (DELETE FROM warden.audit_pending \
                  WHERE ctid = ANY ($1::text[]::tid[]) RETURNING ctid AS pos, *) \
     INSERT INTO warden.audit_events \
     (id, occurred_at, tenant, actor, action, resource_type, resource_id, changes, status, context, \
      prev_hash, hash) \
     SELECT u.id, d.occurred_at, d.tenant, d.actor, d.action, d.resource_type, d.resource_id, \
            d.changes, d.status, d.context, u.prev_hash, u.hash \
       FROM d JOIN unnest($1::text[]::tid[], $2::bigint[], $3::bytea[], $4::bytea[]) \
                   AS u (pos, id, prev_hash, hash) ON u.pos = d.pos";

/// [`PUT`] for a database whose events record their serialization version (0.6.0 and later).
const PUT_V2: &str = "WITH d AS (DELETE FROM warden.audit_pending \
                  WHERE ctid = ANY ($1::text[]::tid[]) RETURNING ctid AS pos, *) \
     INSERT INTO warden.audit_events \
     (id, occurred_at, tenant, actor, action, resource_type, resource_id, changes, status, context, \
      prev_hash, hash, serialization) \
     SELECT u.id, d.occurred_at, d.tenant, d.actor, d.action, d.resource_type, d.resource_id, \
            d.changes, d.status, d.context, u.prev_hash, u.hash, 2::int2 \
       FROM d JOIN unnest($1::text[]::tid[], $2::bigint[], $3::bytea[], $4::bytea[]) \
                   AS u (pos, id, prev_hash, hash) ON u.pos = d.pos";

/// The serialization new events are sealed with: 2, or 1 in a database whose warden SQL predates
/// 0.6.0 (its events have no `serialization` column, and uuid tenants).
pub fn serialization_version() -> i16 {
    let relid = crate::catalog::warden_oid(c"audit_events");
    // SAFETY: a syscache lookup of a column by name.
    let attnum = unsafe { pg_sys::get_attnum(relid, c"serialization".as_ptr()) };
    if relid != pg_sys::InvalidOid && attnum != pg_sys::InvalidAttrNumber as i16 {
        super::canonical::CURRENT_VERSION
    } else {
        1
    }
}

fn seal_batch(max: i64, lo: u32, hi: u32) -> Result<i64, SealError> {
    Spi::connect_mut(|c| {
        c.update(
            "LOCK TABLE warden.audit_events IN SHARE ROW EXCLUSIVE MODE",
            None,
            &[],
        )?;
        let (mut id, mut prev) = head(c)?;
        let version = serialization_version();
        // the upper bound is exclusive: the first tuple of the block after `hi` (a block number
        // is at most 0xFFFFFFFE, so hi + 1 still names one, as ctid '(4294967295,0)')
        let start = format!("({lo},0)");
        let end = format!("({},0)", u64::from(hi) + 1);
        let rows = c.update(
            TAKE,
            None,
            &[max.into(), start.as_str().into(), end.as_str().into()],
        )?;
        let n = rows.len();
        if n == 0 {
            return Ok(0);
        }
        struct Taken {
            pos: String,
            at: TimestampWithTimeZone,
            block_offset: (u64, u64),
            tenant: Option<String>,
            actor: Option<String>,
            action: String,
            rtype: Option<String>,
            rid: Option<String>,
            change: Option<JsonbDatum>,
            status: String,
            context: Option<JsonbDatum>,
        }
        let mut taken = Vec::with_capacity(n);
        for row in rows {
            let pos: String = row.get(1)?.unwrap_or_default();
            let block_offset = parse_tid(&pos);
            taken.push(Taken {
                pos,
                at: row
                    .get(2)?
                    .unwrap_or_else(TimestampWithTimeZone::positive_infinity),
                block_offset,
                tenant: row.get(3)?,
                actor: row.get(4)?,
                action: row.get(5)?.unwrap_or_default(),
                rtype: row.get(6)?,
                rid: row.get(7)?,
                change: row.get(8)?,
                status: row.get(9)?.unwrap_or_default(),
                context: row.get(10)?,
            });
        }
        taken.sort_by_key(|t| (t.at.into_inner(), t.block_offset));
        let mut positions = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
        let mut prevs: Vec<Vec<u8>> = Vec::with_capacity(n);
        let mut hashes: Vec<Vec<u8>> = Vec::with_capacity(n);
        let (mut buf, mut json) = (Vec::with_capacity(1024), Vec::with_capacity(1024));
        for t in taken {
            id += 1;
            let ev = Event {
                version,
                id,
                occurred_at: t.at.into_inner().saturating_add(PG_EPOCH_OFFSET_US),
                tenant: t.tenant.as_deref(),
                actor: t.actor.as_deref(),
                action: &t.action,
                resource_type: t.rtype.as_deref(),
                resource_id: t.rid.as_deref(),
                changes: None,
                status: &t.status,
                context: None,
            };
            // SAFETY: jsonb datums of the SPI result, which outlives this loop.
            let utf8 = unsafe {
                super::jsonb::event_canonical_into(
                    &ev,
                    t.change.as_ref().map(|d| d.0),
                    t.context.as_ref().map(|d| d.0),
                    &mut json,
                    &mut buf,
                )
            }?;
            if !utf8 {
                return Err(SealError::Worker(format!(
                    "event {id} has a JSON value that is not UTF-8"
                )));
            }
            let hash = link(&prev, &buf);
            positions.push(t.pos);
            ids.push(id);
            prevs.push(prev.to_vec());
            hashes.push(hash.to_vec());
            prev = hash;
        }
        let moved = c.update(
            if version == 1 { PUT } else { PUT_V2 },
            None,
            &[positions.into(), ids.into(), prevs.into(), hashes.into()],
        )?;
        if moved.len() != n {
            // cannot happen while the sealing lock is held; refuse rather than leave a gap
            return Err(SealError::Worker(format!(
                "sealing moved {} of {n} pending events",
                moved.len()
            )));
        }
        Ok(n as i64)
    })
}

/// `(block,offset)` as numbers, to order events of the same instant by their position.
fn parse_tid(s: &str) -> (u64, u64) {
    let inner = s.trim_start_matches('(').trim_end_matches(')');
    let mut it = inner
        .split(',')
        .map(|x| x.trim().parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Seals the committed events now, in the caller's transaction (the worker does this on its own;
/// this is for servers without `shared_preload_libraries = 'warden'`, and for tests). Superuser.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn seal_audit() -> Result<i64, pgrx::pg_sys::panic::ErrorReport> {
    crate::errors::ensure_writable(c"warden.seal_audit()");
    Ok(seal_all()?)
}
