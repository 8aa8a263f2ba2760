//! Verification of the chain in two parts. Each event's own hash depends only on its row (its
//! content and stored `prev_hash`): `warden._audit_event_ok(row)` checks it, in a query PostgreSQL
//! may run with parallel workers ([`first_bad_content`]). The links (each `prev_hash` equal to the
//! previous event's hash) and the gapless ids are checked in id order by one heap scan that reads
//! no content ([`scan_links`]). The sealer appends in id order, so the heap is normally in id order
//! too; an event met early (after a purge freed space at the start of the table) waits in a small
//! reorder buffer until its predecessor has been seen.

use std::collections::BTreeMap;

use pgrx::pg_sys;

use super::canonical::Event;
use super::chain::{link, Hash, Report, Verifier};
use super::record::PG_EPOCH_OFFSET_US;
use super::seal::to_hash;

/// Columns of `warden.audit_events` (0.6.0: `serialization` last; before, 12 and uuid tenants).
const COLUMNS: usize = 13;
const COLUMNS_V1: usize = 12;

unsafe fn text_of<'a>(d: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: a text or bytea datum. Inline and uncompressed (a 1-byte header that is not an
    // external pointer, or an uncompressed 4-byte one: the usual case) it is read where it lies;
    // otherwise detoasted (packed form kept) into the current context.
    unsafe {
        let mut v = d.cast_mut_ptr::<pg_sys::varlena>();
        let inline = (pgrx::varlena::varatt_is_1b(v) && !pgrx::varlena::varatt_is_1b_e(v))
            || pgrx::varlena::varatt_is_4b_u(v);
        if !inline {
            v = pg_sys::pg_detoast_datum_packed(v);
        }
        std::slice::from_raw_parts(
            pgrx::varlena::vardata_any(v).cast::<u8>(),
            pgrx::varlena::varsize_any_exhdr(v),
        )
    }
}

unsafe fn uuid_of(d: pg_sys::Datum) -> [u8; 16] {
    let mut u = [0u8; 16];
    // SAFETY: a uuid datum points at 16 bytes.
    unsafe { std::ptr::copy_nonoverlapping(d.cast_mut_ptr::<u8>(), u.as_mut_ptr(), 16) };
    u
}

thread_local! {
    /// The buffers of the content check, kept between rows: the serialization, and the canonical
    /// JSON of `changes` and `context`.
    static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        std::cell::RefCell::new((Vec::with_capacity(1024), Vec::with_capacity(1024)));
}

/// Whether an event's hash is SHA-256 of its `prev_hash` and its canonical serialization. The
/// JSON fields are serialized from jsonb's binary form ([`super::jsonb`]), the identifiers and
/// texts read where they lie.
///
/// # Safety
/// `values`/`nulls` are a deformed row of warden.audit_events (`natts` columns: 13, or 12 for the
/// layout before 0.6.0); allocations go to the current memory context.
unsafe fn content_ok(
    values: &[pg_sys::Datum; COLUMNS],
    nulls: &[bool; COLUMNS],
    natts: usize,
) -> bool {
    // SAFETY: see above.
    unsafe {
        let prev = to_hash(if nulls[10] { &[] } else { text_of(values[10]) });
        let hash = to_hash(if nulls[11] { &[] } else { text_of(values[11]) });
        let text = |i: usize| -> Option<&str> {
            (!nulls[i]).then(|| std::str::from_utf8(text_of(values[i])).unwrap_or("\u{fffd}"))
        };
        // 0.6.0's layout: text identifiers and the version; before, uuids and version 1
        let (version, tenant, actor) = if natts == COLUMNS {
            let version = if nulls[12] {
                0
            } else {
                values[12].value() as i16
            };
            (
                version,
                text(2).map(std::borrow::Cow::Borrowed),
                text(3).map(std::borrow::Cow::Borrowed),
            )
        } else {
            let u = |i: usize| {
                (!nulls[i]).then(|| {
                    std::borrow::Cow::Owned(uuid::Uuid::from_bytes(uuid_of(values[i])).to_string())
                })
            };
            (1, u(2), u(3))
        };
        BUFFERS.with_borrow_mut(|(buf, json)| {
            let ev = Event {
                version,
                id: values[0].value() as i64,
                occurred_at: (values[1].value() as i64).saturating_add(PG_EPOCH_OFFSET_US),
                tenant: tenant.as_deref(),
                actor: actor.as_deref(),
                action: text(4).unwrap_or_default(),
                resource_type: text(5),
                resource_id: text(6),
                changes: None,
                status: text(8).unwrap_or_default(),
                context: None,
            };
            let jsonb = |i: usize| (!nulls[i]).then_some(values[i]);
            super::jsonb::event_canonical_into(&ev, jsonb(7), jsonb(9), json, buf) == Ok(true)
                && link(&prev, buf) == hash
        })
    }
}

// The content check of one row, as SQL: `warden._audit_event_ok(e)`, PARALLEL SAFE, so that a
// parallel sequential scan spreads the hashing over the server's cores.
finfo_v1!(pg_finfo_warden_audit_event_ok);

#[no_mangle]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn warden_audit_event_ok(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: a STRICT function of one warden.audit_events row: a composite datum.
    unsafe {
        let arg = (*fcinfo).args.as_slice(1)[0].value;
        let header =
            pg_sys::pg_detoast_datum(arg.cast_mut_ptr()).cast::<pg_sys::HeapTupleHeaderData>();
        let fields = (*header).t_choice.t_datum;
        let desc = pg_sys::lookup_rowtype_tupdesc(fields.datum_typeid, fields.datum_typmod);
        let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
        tuple.t_len = pgrx::varlena::varsize_any(header.cast()) as u32;
        tuple.t_data = header;
        let natts = (*desc).natts as usize;
        let ok = if natts == COLUMNS || natts == COLUMNS_V1 {
            let mut values = [pg_sys::Datum::from(0usize); COLUMNS];
            let mut nulls = [true; COLUMNS];
            pg_sys::heap_deform_tuple(&mut tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            content_ok(&values, &nulls, natts)
        } else {
            false
        };
        pg_sys::DecrTupleDescRefCount(desc);
        pg_sys::Datum::from(ok)
    }
}

// The content check of one row by its columns (0.8.0): `warden._audit_row_ok(e.id, ...,
// e.serialization)`, the columns in table order. The executor passes each value where it lies in
// the row, where `_audit_event_ok(e)` first copied the whole row into a composite value.
finfo_v1!(pg_finfo_warden_audit_row_ok);

#[no_mangle]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn warden_audit_row_ok(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: a function of the 13 columns of warden.audit_events, in order (sql/audit.sql).
    unsafe {
        let n = (*fcinfo).nargs as usize;
        if n != COLUMNS {
            return pg_sys::Datum::from(false);
        }
        let args = (*fcinfo).args.as_slice(COLUMNS);
        let mut values = [pg_sys::Datum::from(0usize); COLUMNS];
        let mut nulls = [true; COLUMNS];
        for (i, a) in args.iter().enumerate() {
            values[i] = a.value;
            nulls[i] = a.isnull;
        }
        pg_sys::Datum::from(content_ok(&values, &nulls, COLUMNS))
    }
}

/// The lowest id in `from..=to` whose hash does not match its content, by a query the planner may
/// run in parallel.
pub fn first_bad_content(from: i64, to: i64) -> Result<Option<i64>, pgrx::spi::Error> {
    pgrx::Spi::connect(|c| {
        c.select(
            // `id + 0`: no index, so that the planner takes a parallel sequential scan (an index
            // scan in id order would stop at the first bad event, but check every event through
            // random reads, in one process, when there is none)
            if row_function() {
                "SELECT min(e.id + 0) FROM warden.audit_events e \
                  WHERE e.id + 0 BETWEEN $1 AND $2 AND NOT warden._audit_row_ok(e.id, e.occurred_at, \
                        e.tenant, e.actor, e.action, e.resource_type, e.resource_id, e.changes, \
                        e.status, e.context, e.prev_hash, e.hash, e.serialization)"
            } else {
                // a database whose warden SQL is older than 0.8.0
                "SELECT min(e.id + 0) FROM warden.audit_events e \
                  WHERE e.id + 0 BETWEEN $1 AND $2 AND NOT warden._audit_event_ok(e)"
            },
            None, // a row limit would make the executor refuse parallel workers
            &[from.into(), to.into()],
        )?
        .first()
        .get_one::<i64>()
    })
}

/// Whether this database has `warden._audit_row_ok` (its warden SQL is 0.8.0 or later). A
/// read-only query (`Spi::get_one` would mark the transaction as writing, which a hot standby
/// refuses: "cannot assign TransactionIds during recovery", caught by tests/ops/standby.sh).
fn row_function() -> bool {
    pgrx::Spi::connect(|c| {
        c.select(
            "SELECT to_regprocedure('warden._audit_row_ok(bigint, timestamptz, text, text, text, \
             text, text, jsonb, text, jsonb, bytea, bytea, smallint)') IS NOT NULL",
            None,
            &[],
        )?
        .first()
        .get_one::<bool>()
    })
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Checks the links and the gapless ids of the events with `from <= id <= to`, starting after
/// `start` (the event before `from`, or a purge checkpoint; None: the chain's beginning). It reads
/// no content: each event's own hash is checked by [`first_bad_content`], in parallel.
pub fn scan_links(relid: pg_sys::Oid, start: Option<(i64, Hash)>, from: i64, to: i64) -> Report {
    let mut v = Verifier::new(start);
    let mut next = from;
    // events met before their predecessor: (prev_hash, hash) by id
    let mut early: BTreeMap<i64, (Hash, Hash)> = BTreeMap::new();
    // SAFETY: a plain heap scan under AccessShareLock with the active snapshot.
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        if (*desc).natts as usize != COLUMNS && (*desc).natts as usize != COLUMNS_V1 {
            pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            pgrx::error!("warden.audit_events has been altered: it must have {COLUMNS} columns");
        }
        let scan = pg_sys::heap_beginscan(
            rel,
            pg_sys::GetActiveSnapshot(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            pg_sys::ScanOptions::SO_TYPE_SEQSCAN
                | pg_sys::ScanOptions::SO_ALLOW_STRAT
                | pg_sys::ScanOptions::SO_ALLOW_PAGEMODE,
        );
        let mut values = [pg_sys::Datum::from(0usize); COLUMNS];
        let mut nulls = [false; COLUMNS];
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            let id = values[0].value() as i64;
            if id < from || id > to {
                continue;
            }
            let prev = to_hash(if nulls[10] { &[] } else { text_of(values[10]) });
            let hash = to_hash(if nulls[11] { &[] } else { text_of(values[11]) });
            if id != next {
                early.insert(id, (prev, hash));
                continue;
            }
            if !v.push_checked(id, &prev, &hash, true) {
                break;
            }
            next += 1;
            while let Some((p, h)) = early.remove(&next) {
                if !v.push_checked(next, &p, &h, true) {
                    break;
                }
                next += 1;
            }
        }
        pg_sys::heap_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    }
    // what is left waited for an id that never came: the first of them is after a gap
    if v.intact() {
        if let Some((&id, (p, h))) = early.iter().next() {
            v.push_checked(id, p, h, true);
        }
    }
    v.finish()
}
