//! Verification of the chain by a direct heap scan of `warden.audit_events`: no SPI, no executor,
//! one pass. Each event's own hash is checked against its content and stored `prev_hash` as it is
//! read (that check needs nothing else); the links (each `prev_hash` equal to the previous event's
//! hash) and the gapless ids are checked in id order. The sealer appends in id order, so the heap
//! is normally in id order too; an event met early (after a purge freed space at the start of the
//! table) waits in a small reorder buffer until its predecessor has been seen.

use std::collections::BTreeMap;

use pgrx::pg_sys;

use super::canonical::Event;
use super::chain::{link, Hash, Report, Verifier};
use super::record::PG_EPOCH_OFFSET_US;
use super::seal::to_hash;

/// Columns of `warden.audit_events`.
const COLUMNS: usize = 12;

unsafe fn text_of<'a>(d: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: a text or bytea datum; detoasted (packed form kept) into the current context.
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        std::slice::from_raw_parts(
            pgrx::varlena::vardata_any(v).cast::<u8>(),
            pgrx::varlena::varsize_any_exhdr(v),
        )
    }
}

unsafe fn json_of<'a>(d: pg_sys::Datum) -> &'a str {
    // SAFETY: a jsonb datum, detoasted; JsonbToCString writes its text form (valid UTF-8 in a
    // UTF-8 database; anything else counts as changed content).
    unsafe {
        let jb = pg_sys::pg_detoast_datum(d.cast_mut_ptr()).cast::<pg_sys::Jsonb>();
        let len = pgrx::varlena::varsize_any(jb.cast());
        let p = pg_sys::JsonbToCString(std::ptr::null_mut(), &raw mut (*jb).root, len as i32);
        std::str::from_utf8(std::ffi::CStr::from_ptr(p).to_bytes()).unwrap_or("\u{fffd}")
    }
}

unsafe fn uuid_of(d: pg_sys::Datum) -> [u8; 16] {
    let mut u = [0u8; 16];
    // SAFETY: a uuid datum points at 16 bytes.
    unsafe { std::ptr::copy_nonoverlapping(d.cast_mut_ptr::<u8>(), u.as_mut_ptr(), 16) };
    u
}

/// Whether an event's hash is SHA-256 of its `prev_hash` and its canonical serialization.
///
/// # Safety
/// `values`/`nulls` are a deformed row of warden.audit_events; allocations go to the current
/// memory context.
unsafe fn content_ok(
    values: &[pg_sys::Datum; COLUMNS],
    nulls: &[bool; COLUMNS],
    prev: &Hash,
    hash: &Hash,
    buf: &mut Vec<u8>,
) -> bool {
    // SAFETY: see above.
    unsafe {
        let text = |i: usize| -> Option<&str> {
            (!nulls[i]).then(|| std::str::from_utf8(text_of(values[i])).unwrap_or("\u{fffd}"))
        };
        let json = |i: usize| -> Option<&str> { (!nulls[i]).then(|| json_of(values[i])) };
        let ev = Event {
            id: values[0].value() as i64,
            occurred_at: (values[1].value() as i64).saturating_add(PG_EPOCH_OFFSET_US),
            tenant: (!nulls[2]).then(|| uuid_of(values[2])),
            actor: (!nulls[3]).then(|| uuid_of(values[3])),
            action: text(4).unwrap_or_default(),
            resource_type: text(5),
            resource_id: text(6),
            changes: json(7),
            status: text(8).unwrap_or_default(),
            context: json(9),
        };
        ev.canonical_into(buf).is_ok() && link(prev, buf) == *hash
    }
}

/// The content check of one row, as SQL: `warden._audit_event_ok(e)`, PARALLEL SAFE, so that a
/// parallel sequential scan spreads the hashing over the server's cores.
#[no_mangle]
pub extern "C" fn pg_finfo_warden_audit_event_ok() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

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
        let ok = if (*desc).natts as usize == COLUMNS {
            let mut values = [pg_sys::Datum::from(0usize); COLUMNS];
            let mut nulls = [false; COLUMNS];
            pg_sys::heap_deform_tuple(&mut tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            let prev = to_hash(if nulls[10] { &[] } else { text_of(values[10]) });
            let hash = to_hash(if nulls[11] { &[] } else { text_of(values[11]) });
            let mut buf = Vec::with_capacity(1024);
            content_ok(&values, &nulls, &prev, &hash, &mut buf)
        } else {
            false
        };
        pg_sys::DecrTupleDescRefCount(desc);
        pg_sys::Datum::from(ok)
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
            "SELECT min(e.id + 0) FROM warden.audit_events e \
              WHERE e.id + 0 BETWEEN $1 AND $2 AND NOT warden._audit_event_ok(e)",
            None, // a row limit would make the executor refuse parallel workers
            &[from.into(), to.into()],
        )?
        .first()
        .get_one::<i64>()
    })
}

/// One event as read: id, prev_hash, hash, and whether its hash matches its content.
struct Seen {
    prev: Hash,
    hash: Hash,
    content_ok: bool,
}

/// Verifies the events with `from <= id <= to`, starting after `start` (the event before `from`,
/// or a purge checkpoint; None: the chain's beginning).
///
/// `check_content: false` checks only the links and the ids (the contents are then checked by
/// [`first_bad_content`], in parallel).
pub fn scan(
    relid: pg_sys::Oid,
    start: Option<(i64, Hash)>,
    from: i64,
    to: i64,
    check_content: bool,
) -> Report {
    let mut v = Verifier::new(start);
    let mut next = from;
    let mut early: BTreeMap<i64, Seen> = BTreeMap::new();
    // SAFETY: a plain heap scan under AccessShareLock with the active snapshot; per-event memory
    // lives in a context reset after each event.
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        if (*desc).natts as usize != COLUMNS {
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
        let per_event = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CurrentMemoryContext,
            c"warden verify_audit".as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        );
        let mut buf = Vec::with_capacity(1024);
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
            let content_ok = if check_content {
                let old = pg_sys::MemoryContextSwitchTo(per_event);
                let ok = content_ok(&values, &nulls, &prev, &hash, &mut buf);
                pg_sys::MemoryContextSwitchTo(old);
                pg_sys::MemoryContextReset(per_event);
                ok
            } else {
                true
            };
            let seen = Seen {
                prev,
                hash,
                content_ok,
            };
            if id == next {
                if !v.push_checked(id, &seen.prev, &seen.hash, seen.content_ok) {
                    break;
                }
                next += 1;
                while let Some(s) = early.remove(&next) {
                    if !v.push_checked(next, &s.prev, &s.hash, s.content_ok) {
                        break;
                    }
                    next += 1;
                }
            } else {
                early.insert(id, seen);
            }
        }
        pg_sys::heap_endscan(scan);
        pg_sys::MemoryContextDelete(per_event);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    }
    // what is left waited for an id that never came: the first of them is after a gap
    if v.intact() {
        if let Some((&id, s)) = early.iter().next() {
            v.push_checked(id, &s.prev, &s.hash, s.content_ok);
        }
    }
    v.finish()
}
